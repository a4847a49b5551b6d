package stream

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// SASL mechanisms accepted by ClientConfig.SASLMechanism.
const (
	SASLNone        = ""
	SASLPlain       = "plain"
	SASLScramSHA256 = "scram-sha-256"
	SASLScramSHA512 = "scram-sha-512"
)

// ClientConfig is how an Eddy process reaches Kafka. The zero value plus
// Brokers is a plaintext, unauthenticated client.
type ClientConfig struct {
	// Brokers are seed addresses (host:port). Empty means "use the embedded
	// broker" to the commands that can start one.
	Brokers []string
	// ClientID is sent to the brokers and appears in their logs and quotas.
	ClientID string
	// TopicPrefix is prepended to every Eddy topic name ("eddy." by default).
	TopicPrefix string

	TLS                   bool
	TLSCAFile             string
	TLSCertFile           string
	TLSKeyFile            string
	TLSInsecureSkipVerify bool

	SASLMechanism    string
	SASLUser         string
	SASLPasswordFile string
	// SASLPassword is filled from SASLPasswordFile or EDDY_SASL_PASSWORD; it
	// is never a flag so that it does not show in process listings.
	SASLPassword string

	// DialTimeout bounds connecting to one broker.
	DialTimeout time.Duration
}

// DefaultClientConfig returns the defaults documented on the flags.
func DefaultClientConfig() ClientConfig {
	return ClientConfig{
		ClientID:    "eddy",
		TopicPrefix: "eddy.",
		DialTimeout: 5 * time.Second,
	}
}

// RegisterFlags binds the client settings to fs. Brokers are a comma-separated
// list.
func (c *ClientConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.Func("brokers", "comma-separated Kafka seed brokers host:port (empty: start the embedded broker where the command can)", func(s string) error {
		c.Brokers = splitList(s)
		return nil
	})
	fs.StringVar(&c.ClientID, "client-id", c.ClientID, "Kafka client id")
	fs.StringVar(&c.TopicPrefix, "topic-prefix", c.TopicPrefix, "prefix of every Eddy topic name")
	fs.BoolVar(&c.TLS, "tls", c.TLS, "connect to Kafka with TLS")
	fs.StringVar(&c.TLSCAFile, "tls-ca-file", c.TLSCAFile, "PEM file of CA certificates to trust (default: system roots)")
	fs.StringVar(&c.TLSCertFile, "tls-cert-file", c.TLSCertFile, "PEM client certificate for mutual TLS")
	fs.StringVar(&c.TLSKeyFile, "tls-key-file", c.TLSKeyFile, "PEM client key for mutual TLS")
	fs.BoolVar(&c.TLSInsecureSkipVerify, "tls-insecure-skip-verify", c.TLSInsecureSkipVerify, "do not verify the brokers' certificates (testing only)")
	fs.StringVar(&c.SASLMechanism, "sasl-mechanism", c.SASLMechanism, "SASL mechanism: plain, scram-sha-256 or scram-sha-512 (empty: none)")
	fs.StringVar(&c.SASLUser, "sasl-user", c.SASLUser, "SASL user name")
	fs.StringVar(&c.SASLPasswordFile, "sasl-password-file", c.SASLPasswordFile, "file holding the SASL password (or set EDDY_SASL_PASSWORD)")
	fs.DurationVar(&c.DialTimeout, "dial-timeout", c.DialTimeout, "timeout for connecting to one broker")
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Validate checks the settings a user can get wrong and loads the SASL
// password from its file or the environment.
func (c *ClientConfig) Validate() error {
	switch strings.ToLower(c.SASLMechanism) {
	case SASLNone:
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		c.SASLMechanism = strings.ToLower(c.SASLMechanism)
		if c.SASLUser == "" {
			return errors.New("stream: --sasl-user is required with --sasl-mechanism")
		}
		if c.SASLPassword == "" && c.SASLPasswordFile != "" {
			b, err := os.ReadFile(c.SASLPasswordFile)
			if err != nil {
				return fmt.Errorf("stream: read --sasl-password-file: %w", err)
			}
			c.SASLPassword = strings.TrimRight(string(b), "\r\n")
		}
		if c.SASLPassword == "" {
			c.SASLPassword = os.Getenv("EDDY_SASL_PASSWORD")
		}
		if c.SASLPassword == "" {
			return errors.New("stream: SASL needs a password: --sasl-password-file or EDDY_SASL_PASSWORD")
		}
	default:
		return fmt.Errorf("stream: --sasl-mechanism %q: want plain, scram-sha-256 or scram-sha-512", c.SASLMechanism)
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("stream: --tls-cert-file and --tls-key-file go together")
	}
	if c.TopicPrefix != "" && !validTopicChars(c.TopicPrefix) {
		return fmt.Errorf("stream: --topic-prefix %q: only letters, digits, '.', '_' and '-' are allowed", c.TopicPrefix)
	}
	if c.DialTimeout <= 0 {
		return errors.New("stream: --dial-timeout must be positive")
	}
	return nil
}

func validTopicChars(s string) bool {
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}

// TLSConfig builds the TLS settings, or returns nil when TLS is off.
func (c *ClientConfig) TLSConfig() (*tls.Config, error) {
	if !c.TLS && c.TLSCAFile == "" && c.TLSCertFile == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.TLSInsecureSkipVerify} //nolint:gosec // opt-in flag for tests
	if c.TLSCAFile != "" {
		pem, err := os.ReadFile(c.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("stream: read --tls-ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("stream: --tls-ca-file %q holds no PEM certificate", c.TLSCAFile)
		}
		tc.RootCAs = pool
	}
	if c.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("stream: load client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func (c *ClientConfig) saslMechanism() sasl.Mechanism {
	switch c.SASLMechanism {
	case SASLPlain:
		return plain.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsMechanism()
	case SASLScramSHA256:
		return scram.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsSha256Mechanism()
	case SASLScramSHA512:
		return scram.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsSha512Mechanism()
	}
	return nil
}

// Opts returns the franz-go options for connecting with these settings.
// Callers append their own (producer, consumer) options.
func (c *ClientConfig) Opts() ([]kgo.Opt, error) {
	if len(c.Brokers) == 0 {
		return nil, errors.New("stream: no brokers configured")
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(c.ClientID),
		kgo.DialTimeout(c.DialTimeout),
	}
	tc, err := c.TLSConfig()
	if err != nil {
		return nil, err
	}
	if tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if m := c.saslMechanism(); m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

// NewClient creates a franz-go client with the connection settings and the
// extra options.
func (c *ClientConfig) NewClient(extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := c.Opts()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("stream: new Kafka client: %w", err)
	}
	return cl, nil
}
