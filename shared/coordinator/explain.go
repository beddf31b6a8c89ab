package coordinator

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/aws/smithy-go"
)

// Explain turns an SDK error into one line a user can act on: a refused or
// unreachable endpoint, a missing resource, denied access; other errors keep
// their code and message without the SDK's operation wrapping.
func Explain(err error) error {
	if err == nil {
		return nil
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		var oe *net.OpError
		if errors.As(err, &oe) {
			return fmt.Errorf("endpoint %s does not answer (%v)", hostOf(ue.URL), oe.Err)
		}
		return fmt.Errorf("endpoint %s: %v", hostOf(ue.URL), ue.Err)
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch code := ae.ErrorCode(); {
		case strings.Contains(code, "ResourceNotFound"):
			return fmt.Errorf("does not exist: %s", ae.ErrorMessage())
		case strings.Contains(code, "AccessDenied"), strings.Contains(code, "UnrecognizedClient"), strings.Contains(code, "InvalidSignature"):
			return fmt.Errorf("access denied (%s): %s", code, ae.ErrorMessage())
		default:
			return fmt.Errorf("%s: %s", code, ae.ErrorMessage())
		}
	}
	return err
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	return u.Scheme + "://" + u.Host
}
