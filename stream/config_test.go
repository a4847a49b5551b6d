package stream_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/stream"
)

func TestClientConfigValidate(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		mutate  func(*stream.ClientConfig)
		wantErr string
	}{
		{"defaults", func(*stream.ClientConfig) {}, ""},
		{"unknown sasl", func(c *stream.ClientConfig) { c.SASLMechanism = "kerberos" }, "want plain"},
		{"sasl without user", func(c *stream.ClientConfig) { c.SASLMechanism = "plain" }, "--sasl-user"},
		{"sasl without password", func(c *stream.ClientConfig) { c.SASLMechanism = "plain"; c.SASLUser = "u" }, "password"},
		{"sasl password file", func(c *stream.ClientConfig) {
			c.SASLMechanism, c.SASLUser, c.SASLPasswordFile = "SCRAM-SHA-512", "u", pwFile
		}, ""},
		{"missing password file", func(c *stream.ClientConfig) {
			c.SASLMechanism, c.SASLUser, c.SASLPasswordFile = "plain", "u", filepath.Join(dir, "nope")
		}, "--sasl-password-file"},
		{"cert without key", func(c *stream.ClientConfig) { c.TLSCertFile = "c.pem" }, "go together"},
		{"bad prefix", func(c *stream.ClientConfig) { c.TopicPrefix = "eddy/" }, "--topic-prefix"},
		{"zero dial timeout", func(c *stream.ClientConfig) { c.DialTimeout = 0 }, "--dial-timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := stream.DefaultClientConfig()
			tt.mutate(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate() = %v, want an error mentioning %q", err, tt.wantErr)
			}
		})
	}
	c := stream.DefaultClientConfig()
	c.SASLMechanism, c.SASLUser, c.SASLPasswordFile = "plain", "u", pwFile
	if err := c.Validate(); err != nil || c.SASLPassword != "hunter2" {
		t.Fatalf("password from file: %q, %v", c.SASLPassword, err)
	}
	t.Setenv("EDDY_SASL_PASSWORD", "from-env")
	c = stream.DefaultClientConfig()
	c.SASLMechanism, c.SASLUser = "plain", "u"
	if err := c.Validate(); err != nil || c.SASLPassword != "from-env" {
		t.Fatalf("password from env: %q, %v", c.SASLPassword, err)
	}
}

// TestSASLAndTLSAgainstBroker connects through ClientConfig to a kfake
// broker that requires TLS and SASL, for each mechanism, and checks that a
// wrong password is refused.
func TestSASLAndTLSAgainstBroker(t *testing.T) {
	dir := t.TempDir()
	caFile, serverTLS := writeTestPKI(t, dir)
	for _, mech := range []struct{ flag, kfake string }{
		{stream.SASLPlain, "PLAIN"},
		{stream.SASLScramSHA256, "SCRAM-SHA-256"},
		{stream.SASLScramSHA512, "SCRAM-SHA-512"},
	} {
		t.Run(mech.flag, func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(),
				kfake.Superuser(mech.kfake, "eddy", "s3cret"), kfake.TLS(serverTLS),
				kfake.SeedTopics(1, "probe"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			connect := func(password string) error {
				cfg := stream.DefaultClientConfig()
				cfg.Brokers = c.ListenAddrs()
				cfg.TLS, cfg.TLSCAFile = true, caFile
				cfg.SASLMechanism, cfg.SASLUser, cfg.SASLPassword = mech.flag, "eddy", password
				cfg.DialTimeout = 2 * time.Second
				if err := cfg.Validate(); err != nil {
					return err
				}
				cl, err := cfg.NewClient(kgo.RequestRetries(0))
				if err != nil {
					return err
				}
				defer cl.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				return cl.ProduceSync(ctx, &kgo.Record{Topic: "probe", Value: []byte("x")}).FirstErr()
			}
			if err := connect("s3cret"); err != nil {
				t.Fatalf("TLS+SASL %s with the right password: %v", mech.flag, err)
			}
			if err := connect("wrong"); err == nil {
				t.Fatalf("TLS+SASL %s with a wrong password succeeded", mech.flag)
			}
		})
	}
}

func TestTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := stream.DefaultClientConfig()
	c.TLS, c.TLSCAFile = true, notPEM
	if _, err := c.TLSConfig(); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("TLSConfig with a non-PEM CA: %v", err)
	}
	c.TLSCAFile = filepath.Join(dir, "missing.pem")
	if _, err := c.TLSConfig(); err == nil {
		t.Fatal("TLSConfig with a missing CA file succeeded")
	}
	c = stream.DefaultClientConfig()
	if tc, err := c.TLSConfig(); tc != nil || err != nil {
		t.Fatalf("TLS off: %v %v, want nil nil", tc, err)
	}
	if _, err := c.Opts(); err == nil {
		t.Fatal("Opts without brokers succeeded")
	}
}

// writeTestPKI writes a self-signed CA for 127.0.0.1 and returns its file and
// the server's TLS config.
func writeTestPKI(t *testing.T, dir string) (string, *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "eddy-test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return caFile, &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
}
