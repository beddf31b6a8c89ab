package lambdaemu

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Invocation types (X-Amz-Invocation-Type).
const (
	RequestResponse = "RequestResponse"
	Event           = "Event"
	DryRun          = "DryRun"
)

// invokeRoutes is the Invoke API.
func (s *Server) invokeRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2015-03-31/functions/{name}/invocations", s.handleInvoke)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, http.StatusNotFound, "UnknownOperationException", "Unknown operation "+r.Method+" "+r.URL.Path, nil)
	})
	return mux
}

func (s *Server) handleInvoke(w http.ResponseWriter, r *http.Request) {
	ref := r.PathValue("name")
	name, qualifier, region, ok := parseFunctionRef(ref)
	if !ok {
		writeAPIError(w, http.StatusBadRequest, "ValidationException",
			fmt.Sprintf("1 validation error detected: Value '%s' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_\\.]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?", ref), nil)
		return
	}
	if q := r.URL.Query().Get("Qualifier"); q != "" {
		if qualifier != "" && qualifier != q {
			writeAPIError(w, http.StatusBadRequest, "InvalidParameterValueException",
				"The derived qualifier from the function name does not match the specified qualifier.", nil)
			return
		}
		qualifier = q
	}
	f, ok := s.fns[name]
	if !ok || (qualifier != "" && qualifier != "$LATEST") {
		if region == "" {
			region = DefaultRegion
			if ok {
				region = f.region
			}
		}
		arn := fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", region, AccountID, name)
		if qualifier != "" {
			arn += ":" + qualifier
		}
		writeAPIError(w, http.StatusNotFound, "ResourceNotFoundException", "Function not found: "+arn, nil)
		return
	}
	invokedARN := f.arn
	if qualifier != "" {
		invokedARN += ":" + qualifier
	}

	typ := r.Header.Get("X-Amz-Invocation-Type")
	limit := int64(maxSyncPayload)
	switch typ {
	case "":
		typ = RequestResponse
	case RequestResponse, DryRun:
	case Event:
		limit = maxAsyncPayload
	default:
		writeAPIError(w, http.StatusBadRequest, "ValidationException",
			fmt.Sprintf("1 validation error detected: Value '%s' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]", typ), nil)
		return
	}
	payload, tooLarge, err := readLimited(r.Body, limit)
	switch {
	case err != nil:
		writeAPIError(w, http.StatusBadRequest, "InvalidRequestContentException", "Could not read request body: "+err.Error(), nil)
		return
	case tooLarge:
		// Read on (within reason), so that the client sees the answer
		// rather than a connection reset while it still writes.
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 64<<20))
		writeAPIError(w, http.StatusRequestEntityTooLarge, "RequestTooLargeException",
			fmt.Sprintf("Request must be smaller than %d bytes for the InvokeFunction operation", limit), nil)
		return
	case len(payload) == 0:
		payload = []byte("{}")
	case !json.Valid(payload):
		writeAPIError(w, http.StatusBadRequest, "InvalidRequestContentException",
			"Could not parse request body into json: Could not parse payload into json", nil)
		return
	}
	clientCtx := ""
	if c := r.Header.Get("X-Amz-Client-Context"); c != "" {
		b, err := base64.StdEncoding.DecodeString(c)
		if err != nil || !json.Valid(b) {
			writeAPIError(w, http.StatusBadRequest, "InvalidParameterValueException",
				"Client context must be a valid Base64-encoded JSON object.", nil)
			return
		}
		clientCtx = string(b)
	}
	trace := r.Header.Get("X-Amzn-Trace-Id")
	if trace == "" {
		trace = newTraceID()
	}

	switch typ {
	case DryRun:
		w.Header().Set("X-Amzn-Requestid", newRequestID())
		w.WriteHeader(http.StatusNoContent)
		return
	case Event:
		s.mu.Lock()
		closed := s.closed
		if !closed {
			s.wg.Add(1)
		}
		s.mu.Unlock()
		if closed {
			writeAPIError(w, http.StatusServiceUnavailable, "ServiceException", "the server is closing", nil)
			return
		}
		inv := f.newInvocation(Event, invokedARN, trace, clientCtx, payload)
		go s.runAsync(inv)
		w.Header().Set("X-Amzn-Requestid", inv.id)
		w.WriteHeader(http.StatusAccepted)
		return
	}

	inv := f.newInvocation(RequestResponse, invokedARN, trace, clientCtx, payload)
	ok, _, err = f.dispatch(inv)
	if err != nil {
		f.mu.Lock()
		f.finishLocked(inv, exitResult(inv.id, "", err))
		f.mu.Unlock()
		writeAPIError(w, http.StatusServiceUnavailable, "ServiceException", "the server is closing", nil)
		return
	}
	if !ok {
		f.mu.Lock()
		f.finishLocked(inv, result{status: StatusThrottled})
		f.mu.Unlock()
		writeAPIError(w, http.StatusTooManyRequests, "TooManyRequestsException", "Rate Exceeded.",
			map[string]string{"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"})
		return
	}
	select {
	case <-inv.done:
	case <-r.Context().Done():
		return // the invoker gave up; the invocation runs on
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Amzn-Requestid", inv.id)
	h.Set("X-Amz-Executed-Version", "$LATEST")
	if inv.res.fnError {
		h.Set("X-Amz-Function-Error", "Unhandled")
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.res.body)
}

// runAsync runs an Event invocation, waiting while every sandbox is busy
// (Lambda queues asynchronous events rather than refuse them).
func (s *Server) runAsync(inv *invocation) {
	defer s.wg.Done()
	f := inv.fn
	for {
		ok, freed, err := f.dispatch(inv)
		if ok {
			return
		}
		if err == nil {
			select {
			case <-freed:
				continue
			case <-s.done:
				err = errClosed
			}
		}
		f.mu.Lock()
		f.finishLocked(inv, exitResult(inv.id, "", err))
		f.mu.Unlock()
		return
	}
}

// parseFunctionRef splits a FunctionName as the Invoke API takes it: name,
// name:qualifier, account:function:name[:qualifier] or
// arn:partition:lambda:region:account:function:name[:qualifier].
func parseFunctionRef(ref string) (name, qualifier, region string, ok bool) {
	parts := strings.Split(ref, ":")
	if parts[0] == "arn" {
		if len(parts) < 7 || len(parts) > 8 || parts[2] != "lambda" || parts[5] != "function" {
			return "", "", "", false
		}
		region = parts[3]
		parts = parts[6:]
	} else if len(parts) >= 3 {
		if parts[1] != "function" || len(parts) > 4 {
			return "", "", "", false
		}
		parts = parts[2:]
	}
	switch len(parts) {
	case 1:
		name = parts[0]
	case 2:
		name, qualifier = parts[0], parts[1]
		if qualifier == "" {
			return "", "", "", false
		}
	default:
		return "", "", "", false
	}
	if !validName.MatchString(name) {
		return "", "", "", false
	}
	return name, qualifier, region, true
}

// writeAPIError writes an error of the Invoke API as Lambda does: the code
// in X-Amzn-ErrorType, and a JSON body with Type and Message.
func writeAPIError(w http.ResponseWriter, status int, code, msg string, extra map[string]string) {
	body := map[string]string{"Type": "User", "Message": msg}
	if status >= 500 {
		body["Type"] = "Service"
	}
	for k, v := range extra {
		body[k] = v
	}
	w.Header().Set("X-Amzn-ErrorType", code)
	w.Header().Set("X-Amzn-Requestid", newRequestID())
	writeJSON(w, status, body)
}
