// Package config is sottod's configuration: a plain struct with defaults,
// validation, and loading from flags, then the environment, then a JSON
// config file (flags win over the environment, which wins over the file).
//
// Secrets come from files, never from flags: the PostgreSQL URL (which may
// hold a password) is read from PostgresURLFile.
package config

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is everything sottod can be told.
type Config struct {
	// Listen is the TCP address to serve on. Plain HTTP is meant for
	// loopback (behind a TLS-terminating proxy); set TLSCert and TLSKey to
	// serve TLS directly.
	Listen string `json:"listen"`
	// DataDir holds the SQLite database and the attachment blobs.
	DataDir string `json:"data"`
	// TLSCert and TLSKey are PEM files; both or neither.
	TLSCert string `json:"tls_cert"`
	TLSKey  string `json:"tls_key"`
	// PostgresURLFile names a file holding a postgres:// URL; when set, the
	// server keeps its state in PostgreSQL instead of SQLite.
	PostgresURLFile string `json:"postgres_url_file"`
	// AllowedOrigins lists the Origins allowed to open a WebSocket from a
	// browser (e.g. "https://chat.example.org"); requests without an Origin
	// header (native clients) are always allowed. The server's own origin
	// is always allowed.
	AllowedOrigins []string `json:"allowed_origins"`
	// PoWDifficulty is the number of leading zero bits a registration's
	// proof of work must have.
	PoWDifficulty int `json:"pow_difficulty"`
	// RegisterBurst is how many registration steps (challenges and new
	// accounts) one source address may take at once; they then refill at
	// the relay's fixed rate (one per five seconds).
	RegisterBurst int `json:"register_burst"`
	// MaxAttachmentSize bounds one uploaded blob, in bytes.
	MaxAttachmentSize int64 `json:"max_attachment_size"`
	// Retention is how long undelivered envelopes and attachments are kept.
	Retention Duration `json:"retention"`
	// PingInterval and PingTimeout: the server pings each WebSocket every
	// interval and closes it if no pong comes within the timeout.
	PingInterval Duration `json:"ping_interval"`
	PingTimeout  Duration `json:"ping_timeout"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `json:"log_level"`
	// NetPoll reads idle WebSockets from an epoll loop (Linux) instead of
	// one goroutine each: a fraction of the memory per connection. Off is
	// for comparison and for platforms without epoll (where it is off
	// anyway).
	NetPoll bool `json:"netpoll"`
	// Mailboxes says where SQLite mode keeps envelopes: "queue" (a
	// log-structured queue in DataDir/mailboxes, the default: several
	// times the throughput) or "database" (the SQLite file's envelopes
	// table). PostgreSQL mode keeps them in PostgreSQL either way.
	Mailboxes string `json:"mailboxes"`
	// GCPercent is the Go garbage collector's target (GOGC), unless the
	// GOGC environment variable sets it: higher trades memory for CPU.
	GCPercent int `json:"gc_percent"`
}

// Duration is a time.Duration written as "30s", "720h" in JSON.
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Limits of the configuration values, each with its reason.
const (
	// MinPoWDifficulty keeps registration from being free; MaxPoWDifficulty
	// keeps it possible on a phone (2^32 hashes is minutes to hours).
	MinPoWDifficulty = 0
	MaxPoWDifficulty = 32
	// DefaultPoWDifficulty costs about a second of one core: negligible once
	// per account, expensive for mass registration.
	DefaultPoWDifficulty = 22
	// DefaultRegisterBurst lets a household sign up together (each new
	// account takes two steps) while a script from one address soon waits
	// for the refill; MaxRegisterBurst keeps the limit a limit.
	DefaultRegisterBurst = 10
	MaxRegisterBurst     = 100_000
	// DefaultMaxAttachmentSize is 2 GiB: a long video.
	DefaultMaxAttachmentSize = 2 << 30
	// DefaultRetention is 30 days (DESIGN.md, P5).
	DefaultRetention = 30 * 24 * time.Hour
	// MinPingInterval keeps pings from becoming a load of their own.
	MinPingInterval = time.Second
	// DefaultGCPercent lets the heap grow to three times what is live
	// before a collection. Against Go's 100 it cut sottod's CPU per
	// message at saturation by about a quarter (garbage collection was
	// 19% of it), and it keeps an idle connection within its 8 kB budget
	// (7.1 kB against 5.9 kB at 19,900 connections; 300 took 8.6 kB).
	// Min and Max keep it a tuning knob: below 25 the collector runs
	// nearly all the time; above 1000 the heap may be ten times what is
	// live.
	DefaultGCPercent = 200
	MinGCPercent     = 25
	MaxGCPercent     = 1000
)

// Defaults returns the configuration sottod runs with when told nothing.
func Defaults() Config {
	return Config{
		Listen:            "127.0.0.1:8080",
		DataDir:           "sotto-data",
		PoWDifficulty:     DefaultPoWDifficulty,
		RegisterBurst:     DefaultRegisterBurst,
		MaxAttachmentSize: DefaultMaxAttachmentSize,
		Retention:         Duration(DefaultRetention),
		PingInterval:      Duration(30 * time.Second),
		PingTimeout:       Duration(10 * time.Second),
		LogLevel:          "info",
		NetPoll:           true,
		Mailboxes:         "queue",
		GCPercent:         DefaultGCPercent,
	}
}

// Validate returns every problem with c, joined.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen %q: %w", c.Listen, err))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data: a directory is required"))
	}
	if c.GCPercent < MinGCPercent || c.GCPercent > MaxGCPercent {
		errs = append(errs, fmt.Errorf("gc-percent %d: want %d to %d", c.GCPercent, MinGCPercent, MaxGCPercent))
	}
	if c.Mailboxes != "queue" && c.Mailboxes != "database" {
		errs = append(errs, fmt.Errorf("mailboxes %q: want queue or database", c.Mailboxes))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("tls-cert and tls-key go together"))
	}
	for _, o := range c.AllowedOrigins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" {
			errs = append(errs, fmt.Errorf("allowed origin %q: want scheme://host[:port]", o))
		}
	}
	if c.RegisterBurst < 1 || c.RegisterBurst > MaxRegisterBurst {
		errs = append(errs, fmt.Errorf("register-burst %d: want 1 to %d", c.RegisterBurst, MaxRegisterBurst))
	}
	if c.PoWDifficulty < MinPoWDifficulty || c.PoWDifficulty > MaxPoWDifficulty {
		errs = append(errs, fmt.Errorf("pow-difficulty %d: want %d to %d", c.PoWDifficulty, MinPoWDifficulty, MaxPoWDifficulty))
	}
	if c.MaxAttachmentSize <= 0 {
		errs = append(errs, fmt.Errorf("max-attachment-size %d: must be positive", c.MaxAttachmentSize))
	}
	if c.Retention < Duration(24*time.Hour) {
		errs = append(errs, fmt.Errorf("retention %v: at least a day", time.Duration(c.Retention)))
	}
	if c.PingInterval < Duration(MinPingInterval) || c.PingTimeout <= 0 {
		errs = append(errs, fmt.Errorf("ping-interval %v / ping-timeout %v: interval at least %v, timeout positive",
			time.Duration(c.PingInterval), time.Duration(c.PingTimeout), MinPingInterval))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log-level %q: want debug, info, warn or error", c.LogLevel))
	}
	return errors.Join(errs...)
}

// setting is one configuration value: its flag, environment variable and a
// setter shared by all three sources.
type setting struct {
	name  string // flag name; the variable is SOTTOD_ + upper snake case
	usage string
	set   func(c *Config, v string) error
	get   func(c *Config) string
}

func settings() []setting {
	str := func(p func(*Config) *string) (func(*Config, string) error, func(*Config) string) {
		return func(c *Config, v string) error { *p(c) = v; return nil }, func(c *Config) string { return *p(c) }
	}
	dur := func(p func(*Config) *Duration) (func(*Config, string) error, func(*Config) string) {
		return func(c *Config, v string) error { return p(c).UnmarshalText([]byte(v)) },
			func(c *Config) string { return time.Duration(*p(c)).String() }
	}
	var out []setting
	add := func(name, usage string, set func(*Config, string) error, get func(*Config) string) {
		out = append(out, setting{name, usage, set, get})
	}
	s, g := str(func(c *Config) *string { return &c.Listen })
	add("listen", "address to serve on", s, g)
	s, g = str(func(c *Config) *string { return &c.DataDir })
	add("data", "directory for the SQLite database and attachments", s, g)
	s, g = str(func(c *Config) *string { return &c.TLSCert })
	add("tls-cert", "TLS certificate (PEM); serve TLS with -tls-key", s, g)
	s, g = str(func(c *Config) *string { return &c.TLSKey })
	add("tls-key", "TLS private key (PEM)", s, g)
	s, g = str(func(c *Config) *string { return &c.PostgresURLFile })
	add("postgres-url-file", "file holding a postgres:// URL; use PostgreSQL instead of SQLite", s, g)
	add("allowed-origins", "comma-separated browser origins allowed to connect",
		func(c *Config, v string) error {
			c.AllowedOrigins = nil
			for _, o := range strings.Split(v, ",") {
				if o = strings.TrimSpace(o); o != "" {
					c.AllowedOrigins = append(c.AllowedOrigins, o)
				}
			}
			return nil
		},
		func(c *Config) string { return strings.Join(c.AllowedOrigins, ",") })
	add("pow-difficulty", "leading zero bits of a registration's proof of work",
		func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			c.PoWDifficulty = n
			return err
		},
		func(c *Config) string { return strconv.Itoa(c.PoWDifficulty) })
	add("register-burst", "registration steps one source address may take at once",
		func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			c.RegisterBurst = n
			return err
		},
		func(c *Config) string { return strconv.Itoa(c.RegisterBurst) })
	add("max-attachment-size", "largest attachment in bytes",
		func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			c.MaxAttachmentSize = n
			return err
		},
		func(c *Config) string { return strconv.FormatInt(c.MaxAttachmentSize, 10) })
	ds, dg := dur(func(c *Config) *Duration { return &c.Retention })
	add("retention", "how long undelivered envelopes and attachments are kept", ds, dg)
	ds, dg = dur(func(c *Config) *Duration { return &c.PingInterval })
	add("ping-interval", "WebSocket ping interval", ds, dg)
	ds, dg = dur(func(c *Config) *Duration { return &c.PingTimeout })
	add("ping-timeout", "close a WebSocket whose pong is this late", ds, dg)
	s, g = str(func(c *Config) *string { return &c.Mailboxes })
	add("mailboxes", "where SQLite mode keeps envelopes: queue (a log-structured queue beside the database) or database", s, g)
	add("gc-percent", "the garbage collector's target, as GOGC (which, when set, wins): higher trades memory for CPU",
		func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			c.GCPercent = n
			return err
		},
		func(c *Config) string { return strconv.Itoa(c.GCPercent) })
	s, g = str(func(c *Config) *string { return &c.LogLevel })
	add("log-level", "debug, info, warn or error", s, g)
	add("netpoll", "read idle WebSockets from an epoll loop rather than a goroutine each (true or false)",
		func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			c.NetPoll = b
			return err
		},
		func(c *Config) string { return strconv.FormatBool(c.NetPoll) })
	return out
}

// EnvName is the environment variable for a flag name: SOTTOD_ and the name
// in upper snake case.
func EnvName(flagName string) string {
	return "SOTTOD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Load builds the configuration from args (without the program name), the
// environment (getenv), and the JSON file named by -config or SOTTOD_CONFIG.
// Precedence: flags, then environment, then file, then Defaults(). The
// result is validated. With -h, Load writes the usage to usage and returns
// flag.ErrHelp.
func Load(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	fs := flag.NewFlagSet("sottod", flag.ContinueOnError)
	fs.SetOutput(usage)
	ss := settings()
	defaults := Defaults()
	flagVals := map[string]*string{}
	for _, s := range ss {
		flagVals[s.name] = fs.String(s.name, s.get(&defaults), s.usage+" (env "+EnvName(s.name)+")")
	}
	configFile := fs.String("config", "", "JSON configuration file (env SOTTOD_CONFIG)")
	fs.Usage = func() {
		fmt.Fprintf(usage, "Usage: sottod [flags]\n\nsottod is Sotto's server. Settings come from flags, then SOTTOD_* environment\nvariables, then the JSON file given by -config; flags win.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}

	c := defaults
	if *configFile == "" {
		*configFile = getenv("SOTTOD_CONFIG")
	}
	if *configFile != "" {
		b, err := os.ReadFile(*configFile)
		if err != nil {
			return Config{}, fmt.Errorf("read config: %w", err)
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", *configFile, err)
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, s := range ss {
		v, from := "", ""
		if set[s.name] {
			v, from = *flagVals[s.name], "flag -"+s.name
		} else if e := getenv(EnvName(s.name)); e != "" {
			v, from = e, EnvName(s.name)
		} else {
			continue
		}
		if err := s.set(&c, v); err != nil {
			return Config{}, fmt.Errorf("%s: %w", from, err)
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return c, nil
}

// PostgresURL reads the PostgreSQL URL from PostgresURLFile ("" if unset).
func (c Config) PostgresURL() (string, error) {
	if c.PostgresURLFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(c.PostgresURLFile)
	if err != nil {
		return "", fmt.Errorf("read postgres URL: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
