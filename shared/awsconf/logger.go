package awsconf

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"

	"github.com/aws/smithy-go/logging"
)

// SDKComponent is the value of the "component" key on the lines the AWS
// SDK writes through Options.Logger.
const SDKComponent = "aws-sdk"

// sdkLogger passes the AWS SDK's messages to a slog logger: its WARN at
// WARN, its DEBUG (the retries ClientLogMode asks for) at DEBUG, each
// with component=aws-sdk. Credentials the text may hold are redacted
// first; Load never asks the SDK for requests or responses, where they
// would be, but a message can quote anything.
type sdkLogger struct {
	log *slog.Logger
	ctx context.Context
}

var (
	_ logging.Logger        = sdkLogger{}
	_ logging.ContextLogger = sdkLogger{}
)

func (s sdkLogger) Logf(c logging.Classification, format string, v ...any) {
	lvl := slog.LevelDebug
	if c == logging.Warn {
		lvl = slog.LevelWarn
	}
	ctx := s.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	if !s.log.Enabled(ctx, lvl) {
		return
	}
	s.log.Log(ctx, lvl, Redact(fmt.Sprintf(format, v...)), "component", SDKComponent)
}

// WithContext is the logger for one operation.
func (s sdkLogger) WithContext(ctx context.Context) logging.Logger {
	return sdkLogger{log: s.log, ctx: ctx}
}

var (
	// A header line that carries credentials, as the SDK's request and
	// response dumps print them.
	secretHeader = regexp.MustCompile(`(?im)^(\s*(?:authorization|x-amz-security-token|x-amz-credential|x-amz-signature)\s*:).*$`)
	// name=value pairs that carry credentials: SigV4's Credential= and
	// Signature=, presigned URLs' query, and credentials files' keys.
	secretPair = regexp.MustCompile(`(?i)\b((?:x-amz-)?(?:credential|signature|security-token|aws_secret_access_key|aws_session_token|secretaccesskey|sessiontoken)["']?\s*[=:]\s*["']?)[^\s,&"';]+`)
	// An access key id on its own (AKIA… long-term, ASIA… temporary).
	keyID = regexp.MustCompile(`\b(?:AKIA|ASIA|AIDA|AROA)[A-Z0-9]{12,}\b`)
)

// Redact replaces what looks like a credential in s with [redacted]:
// Authorization and security-token headers, SigV4 credential and
// signature parameters, secret-key and session-token pairs, and access
// key ids.
func Redact(s string) string {
	s = secretHeader.ReplaceAllString(s, "$1 [redacted]")
	s = secretPair.ReplaceAllString(s, "${1}[redacted]")
	return keyID.ReplaceAllString(s, "[redacted]")
}
