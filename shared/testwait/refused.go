package testwait

import (
	"net"
	"testing"
)

// RefusedEndpoint is an http:// URL of a 127.0.0.1 port that refuses
// connections (it was free a moment ago): a dead endpoint for tests of
// what a client does when nothing answers.
func RefusedEndpoint(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}
