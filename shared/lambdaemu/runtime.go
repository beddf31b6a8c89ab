package lambdaemu

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Runtime API headers.
const (
	hdrRequestID     = "Lambda-Runtime-Aws-Request-Id"
	hdrDeadline      = "Lambda-Runtime-Deadline-Ms"
	hdrFunctionARN   = "Lambda-Runtime-Invoked-Function-Arn"
	hdrTraceID       = "Lambda-Runtime-Trace-Id"
	hdrClientContext = "Lambda-Runtime-Client-Context"
	hdrErrorType     = "Lambda-Runtime-Function-Error-Type"
	hdrErrorBody     = "Lambda-Runtime-Function-Error-Body" // a trailer
	hdrExtensionName = "Lambda-Extension-Name"
	hdrExtensionID   = "Lambda-Extension-Identifier"
)

// routes is the Runtime API of one sandbox, with the part of the
// Extensions API that aws-lambda-go's WithEnableSIGTERM uses.
func (sb *sandbox) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", sb.handleNext)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", sb.handleResponse)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", sb.handleError)
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", sb.handleInitError)
	mux.HandleFunc("POST /2020-01-01/extension/register", sb.handleRegister)
	mux.HandleFunc("GET /2020-01-01/extension/event/next", sb.handleExtensionNext)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeRuntimeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("no such path: %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// handleNext blocks until an invocation is assigned to this sandbox and
// gives it to the runtime. Its deadline starts now.
func (sb *sandbox) handleNext(w http.ResponseWriter, r *http.Request) {
	f, s := sb.fn, sb.fn.srv
	f.mu.Lock()
	if sb.current != nil || sb.waiting {
		f.mu.Unlock()
		writeStateError(w, "InvocationNext")
		return
	}
	if sb.ready.IsZero() {
		sb.ready = time.Now()
		s.stopTimer(sb.initTimer)
		sb.initTimer = nil
	}
	sb.waiting = true
	for {
		if inv := sb.pending; inv != nil && !sb.gone {
			sb.pending, sb.current, sb.waiting = nil, inv, false
			sb.count++
			now := time.Now()
			inv.pid, inv.start, inv.deadline = sb.pid, now, now.Add(f.cfg.Timeout)
			if inv.cold {
				inv.initDur = sb.ready.Sub(sb.started)
			}
			inv.timer = s.afterFunc(f.cfg.Timeout, func() { f.expire(inv) })
			f.logf("START RequestId: %s Version: $LATEST\n", inv.id)
			h := w.Header()
			h.Set("Content-Type", "application/json")
			h.Set(hdrRequestID, inv.id)
			h.Set(hdrDeadline, strconv.FormatInt(inv.deadline.UnixMilli(), 10))
			h.Set(hdrFunctionARN, inv.arn)
			h.Set(hdrTraceID, inv.trace)
			if inv.clientCtx != "" {
				h.Set(hdrClientContext, inv.clientCtx)
			}
			payload := inv.payload
			f.mu.Unlock()
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(payload)
			return
		}
		f.mu.Unlock()
		select {
		case <-sb.wake:
		case <-sb.dead:
		case <-r.Context().Done():
		}
		f.mu.Lock()
		select {
		case <-sb.dead:
		case <-r.Context().Done():
		default:
			continue
		}
		sb.waiting = false
		f.mu.Unlock()
		return
	}
}

// handleResponse takes the function's answer.
func (sb *sandbox) handleResponse(w http.ResponseWriter, r *http.Request) {
	body, tooLarge, err := readLimited(r.Body, maxResponse)
	if err != nil {
		writeRuntimeError(w, http.StatusBadRequest, "TruncatedHTTPRequest", "HTTP request detected as truncated")
		return
	}
	res := result{status: StatusSuccess, body: body}
	switch {
	case tooLarge:
		msg := fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", maxResponse)
		res = result{status: StatusError, body: errorBody("Function.ResponseSizeTooLarge", msg), errorType: "Function.ResponseSizeTooLarge", fnError: true}
	case r.Trailer.Get(hdrErrorType) != "":
		// aws-lambda-go reports an error reading a streamed response
		// in trailers.
		typ := r.Trailer.Get(hdrErrorType)
		b, err := base64.StdEncoding.DecodeString(r.Trailer.Get(hdrErrorBody))
		if err != nil || !json.Valid(b) {
			b = errorBody(typ, "")
		}
		res = result{status: StatusError, body: b, errorType: typ, fnError: true}
	}
	if !sb.answer(w, r.PathValue("id"), res) {
		return
	}
	if tooLarge {
		writeRuntimeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
			fmt.Sprintf("Exceeded maximum allowed payload size (%d bytes).", maxResponse))
		return
	}
	writeAccepted(w)
}

// handleError takes a function error: {errorMessage, errorType,
// stackTrace}, with its type also in Lambda-Runtime-Function-Error-Type.
func (sb *sandbox) handleError(w http.ResponseWriter, r *http.Request) {
	body, tooLarge, err := readLimited(r.Body, maxResponse)
	if err != nil {
		writeRuntimeError(w, http.StatusBadRequest, "TruncatedHTTPRequest", "HTTP request detected as truncated")
		return
	}
	res := errorResult(body, r.Header.Get(hdrErrorType))
	if tooLarge {
		msg := fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", maxResponse)
		res = result{status: StatusError, body: errorBody("Function.ResponseSizeTooLarge", msg), errorType: "Function.ResponseSizeTooLarge", fnError: true}
	}
	if sb.answer(w, r.PathValue("id"), res) {
		writeAccepted(w)
	}
}

// answer settles the current invocation with res; it writes the error and
// returns false when id is not the current invocation.
func (sb *sandbox) answer(w http.ResponseWriter, id string, res result) bool {
	f := sb.fn
	f.mu.Lock()
	defer f.mu.Unlock()
	inv := sb.current
	switch {
	case inv == nil:
		writeStateError(w, "InvocationResponse")
		return false
	case inv.id != id:
		writeRuntimeError(w, http.StatusBadRequest, "InvalidRequestID", "Invalid request ID")
		return false
	}
	sb.current = nil
	f.srv.stopTimer(inv.timer)
	f.finishLocked(inv, res)
	if !sb.gone {
		f.notifyLocked() // idle again
	}
	return true
}

// handleInitError takes an error the runtime met before asking for its
// first event: it answers the invocation waiting for this sandbox, and
// Lambda then ends the sandbox.
func (sb *sandbox) handleInitError(w http.ResponseWriter, r *http.Request) {
	f := sb.fn
	body, _, err := readLimited(r.Body, maxResponse)
	if err != nil {
		writeRuntimeError(w, http.StatusBadRequest, "TruncatedHTTPRequest", "HTTP request detected as truncated")
		return
	}
	f.mu.Lock()
	if !sb.ready.IsZero() {
		f.mu.Unlock()
		writeStateError(w, "InitError")
		return
	}
	if !sb.gone {
		f.removeLocked(sb)
	}
	inv := sb.pending
	claimed := inv != nil && !inv.claimed
	if claimed {
		f.claimLocked(inv, errorResult(body, r.Header.Get(hdrErrorType)))
	}
	f.mu.Unlock()
	writeAccepted(w)
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	sb.killAndWait()
	if claimed {
		f.mu.Lock()
		f.publishLocked(inv)
		f.mu.Unlock()
	}
}

// handleRegister registers an extension. aws-lambda-go registers an
// internal one, subscribed to no events, to have SIGTERM before SIGKILL.
func (sb *sandbox) handleRegister(w http.ResponseWriter, r *http.Request) {
	f := sb.fn
	f.mu.Lock()
	ready := !sb.ready.IsZero()
	f.mu.Unlock()
	if ready {
		writeStateError(w, "ExtensionRegister")
		return
	}
	if r.Header.Get(hdrExtensionName) == "" {
		writeRuntimeError(w, http.StatusBadRequest, "InvalidRequest", "Missing Lambda-Extension-Name header")
		return
	}
	w.Header().Set(hdrExtensionID, newRequestID())
	writeJSON(w, http.StatusOK, map[string]string{
		"functionName":    f.cfg.Name,
		"functionVersion": "$LATEST",
		"handler":         "bootstrap",
	})
}

// handleExtensionNext blocks while the sandbox lives: no event is sent to
// extensions (SHUTDOWN is a SIGTERM here).
func (sb *sandbox) handleExtensionNext(w http.ResponseWriter, r *http.Request) {
	select {
	case <-sb.dead:
	case <-r.Context().Done():
	}
	writeRuntimeError(w, http.StatusInternalServerError, "ShutDown", "the sandbox is shutting down")
}

// errorResult is the result of a function error posted by the runtime:
// its JSON body as it is, or one built from a body that is not JSON.
func errorResult(body []byte, headerType string) result {
	var e struct {
		ErrorType string `json:"errorType"`
	}
	if json.Unmarshal(body, &e) != nil {
		typ := headerType
		if typ == "" {
			typ = "Runtime.Unknown"
		}
		return result{status: StatusError, body: errorBody(typ, string(body)), errorType: typ, fnError: true}
	}
	if e.ErrorType == "" {
		e.ErrorType = headerType
	}
	return result{status: StatusError, body: body, errorType: e.ErrorType, fnError: true}
}

// readLimited reads at most limit bytes of body; tooLarge reports more.
func readLimited(body io.Reader, limit int64) (b []byte, tooLarge bool, err error) {
	b, err = io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(b)) > limit {
		return nil, true, nil
	}
	return b, false, nil
}

func writeAccepted(w http.ResponseWriter) {
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "OK"})
}

// writeStateError is the runtime's 403 for a call out of order.
func writeStateError(w http.ResponseWriter, to string) {
	writeRuntimeError(w, http.StatusForbidden, "InvalidStateTransition",
		fmt.Sprintf("State transition to %s failed for runtime. Error: State transition is not allowed", to))
}

func writeRuntimeError(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, map[string]string{"errorType": typ, "errorMessage": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
