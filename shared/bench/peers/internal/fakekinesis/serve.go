package fakekinesis

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// ServeOptions say how Start serves the fake.
type ServeOptions struct {
	// Addr is the address to listen on (default 127.0.0.1:0, a free
	// port); its host must be a loopback address.
	Addr string
	// TLS serves HTTPS with a certificate for 127.0.0.1 and localhost,
	// made at start and signed by itself, offering HTTP/2 (h2, as
	// SubscribeToShard is served by Kinesis) and HTTP/1.1 by ALPN. Without
	// it the fake serves plain HTTP/1.1.
	TLS bool
	// CAFile is where to write the certificate's PEM, for AWS_CA_BUNDLE
	// (TLS only; "": a file in a new temporary directory, removed by
	// Close).
	CAFile string
}

// Endpoint is the fake served on a loopback port.
type Endpoint struct {
	URL string // http://127.0.0.1:PORT or https://127.0.0.1:PORT
	// CAFile and CAPEM are the certificate to trust (TLS only): pass
	// CAFile to the AWS SDKs as AWS_CA_BUNDLE.
	CAFile string
	CAPEM  []byte

	hs     *http.Server
	tmpDir string
}

// Start serves s on a loopback port until Close. The *http.Server has no
// timeouts, as a subscription lasts minutes.
func (s *Server) Start(o ServeOptions) (*Endpoint, error) {
	addr := o.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("fakekinesis: listen on %s: only a loopback IP address is served", addr)
	}
	e := &Endpoint{hs: &http.Server{Handler: s, ReadHeaderTimeout: 30 * time.Second}}
	var protos http.Protocols
	if o.TLS {
		cert, pemBytes, err := selfSigned()
		if err != nil {
			return nil, err
		}
		e.CAPEM, e.CAFile = pemBytes, o.CAFile
		if e.CAFile == "" {
			if e.tmpDir, err = os.MkdirTemp("", "fakekinesis-ca-"); err != nil {
				return nil, err
			}
			e.CAFile = filepath.Join(e.tmpDir, "ca.pem")
		}
		if err := os.WriteFile(e.CAFile, pemBytes, 0o644); err != nil {
			e.removeTmp()
			return nil, err
		}
		e.hs.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		protos.SetHTTP2(true)
	}
	protos.SetHTTP1(true)
	e.hs.Protocols = &protos
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		e.removeTmp()
		return nil, err
	}
	if o.TLS {
		e.URL = "https://" + ln.Addr().String()
		go e.hs.ServeTLS(ln, "", "")
	} else {
		e.URL = "http://" + ln.Addr().String()
		go e.hs.Serve(ln)
	}
	return e, nil
}

// Close stops serving, ending every connection (and so every
// subscription), and removes a CA file Start made up.
func (e *Endpoint) Close() error {
	err := e.hs.Close()
	e.removeTmp()
	return err
}

func (e *Endpoint) removeTmp() {
	if e.tmpDir != "" {
		os.RemoveAll(e.tmpDir)
	}
}

// selfSigned makes an ECDSA P-256 certificate for 127.0.0.1, ::1 and
// localhost, valid for a day, that is its own CA.
func selfSigned() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"fakekinesis"}, CommonName: "127.0.0.1"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if pemBytes == nil {
		return tls.Certificate{}, nil, errors.New("fakekinesis: encode the certificate")
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pemBytes, nil
}
