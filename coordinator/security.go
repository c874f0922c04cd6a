package coordinator

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// The startup checks of the coordinator's security settings. Every error names the command-line
// flag (and, in parentheses, the Config field) that is wrong, so that an operator can fix it
// without reading Go: a certificate that does not load, a CA that signs nothing we use, a route
// certificate without the clientAuth usage that a required client CA demands, TLS that would let
// anyone in.

// tlsFiles is the embedded server's certificate material, loaded and checked once at startup.
type tlsFiles struct {
	cert     tls.Certificate
	clientCA *x509.CertPool // --nats-tls-client-ca: verify clients and routes (nil: not required)
	routeCA  *x509.CertPool // what the route dialer trusts: --nats-ca, else --nats-tls-client-ca
}

func securityErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
}

// loadCAFile reads a PEM file of CA certificates; flag names it in errors.
func loadCAFile(flag, path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, securityErr("%s: %v", flag, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, securityErr("%s %s: no PEM certificate in it", flag, path)
	}
	return pool, nil
}

// loadKeyPair loads a certificate and its key and checks the dates.
func loadKeyPair(certFlag, certPath, keyFlag, keyPath string) (tls.Certificate, error) {
	switch {
	case certPath == "" && keyPath != "":
		return tls.Certificate{}, securityErr("%s needs %s: a key without its certificate", keyFlag, certFlag)
	case certPath != "" && keyPath == "":
		return tls.Certificate{}, securityErr("%s needs %s: a certificate without its key", certFlag, keyFlag)
	}
	for _, f := range []struct{ flag, path string }{{certFlag, certPath}, {keyFlag, keyPath}} {
		if _, err := os.Stat(f.path); err != nil {
			return tls.Certificate{}, securityErr("%s: %v", f.flag, err)
		}
	}
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return tls.Certificate{}, securityErr("%s / %s: %v", certFlag, keyFlag, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return tls.Certificate{}, securityErr("%s: %v", certFlag, err)
		}
	}
	now := time.Now()
	if now.After(cert.Leaf.NotAfter) || now.Before(cert.Leaf.NotBefore) {
		return tls.Certificate{}, securityErr("%s %s: valid from %s to %s, not now", certFlag, certPath,
			cert.Leaf.NotBefore.UTC().Format(time.RFC3339), cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return cert, nil
}

// verifyUsage checks that cert chains to pool for usage; what says what it is for.
func verifyUsage(cert tls.Certificate, pool *x509.CertPool, usage x509.ExtKeyUsage) error {
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	_, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}})
	return err
}

// authenticated reports whether the embedded server lets only known clients in: a password user,
// an nkey (the operator's, from --nats-nkey-seed) or a required client certificate.
func (c *Config) authenticated() bool {
	return c.NATS.User != "" || c.NATS.NkeySeedFile != "" || c.NATS.Embedded.TLSCA != ""
}

// loadEmbeddedTLS loads and checks the embedded server's TLS material; nil without TLS.
func (c *Config) loadEmbeddedTLS() (*tlsFiles, error) {
	e := &c.NATS.Embedded
	if e.TLSCert == "" && e.TLSKey == "" {
		if e.TLSCA != "" {
			return nil, securityErr("--nats-tls-client-ca (TLSCA) needs --nats-tls-cert and --nats-tls-key: client certificates are a TLS feature")
		}
		return nil, nil
	}
	cert, err := loadKeyPair("--nats-tls-cert (NATS.Embedded.TLSCert)", e.TLSCert, "--nats-tls-key (NATS.Embedded.TLSKey)", e.TLSKey)
	if err != nil {
		return nil, err
	}
	f := &tlsFiles{cert: cert}
	if e.TLSCA != "" {
		if f.clientCA, err = loadCAFile("--nats-tls-client-ca (NATS.Embedded.TLSCA)", e.TLSCA); err != nil {
			return nil, err
		}
	}
	f.routeCA = f.clientCA
	routeCAFlag := "--nats-tls-client-ca"
	if c.NATS.CAFile != "" {
		ca, err := loadCAFile("--nats-ca (NATS.CAFile)", c.NATS.CAFile)
		if err != nil {
			return nil, err
		}
		f.routeCA, routeCAFlag = ca, "--nats-ca"
		if err := verifyUsage(cert, ca, x509.ExtKeyUsageServerAuth); err != nil {
			return nil, securityErr("--nats-tls-cert %s does not verify against --nats-ca %s, which clients of this server trust: %v", e.TLSCert, c.NATS.CAFile, err)
		}
	}
	if e.ClusterPort != 0 {
		if f.routeCA == nil {
			return nil, securityErr("--nats-cluster-listen with --nats-tls-cert: give --nats-ca (or --nats-tls-client-ca), the CA that signed the other coordinators' certificates, or the routes cannot verify each other")
		}
		if err := verifyUsage(cert, f.routeCA, x509.ExtKeyUsageServerAuth); err != nil {
			return nil, securityErr("--nats-tls-cert %s does not verify against %s for serverAuth, so the other coordinators' routes would refuse it: %v", e.TLSCert, routeCAFlag, err)
		}
	}
	if f.clientCA != nil && (e.ClusterPort != 0 || c.NATS.CertFile == "") {
		// Routes present the server certificate as a client certificate, and so does the
		// coordinator's own connection when --nats-cert is not given.
		if err := verifyUsage(cert, f.clientCA, x509.ExtKeyUsageClientAuth); err != nil {
			return nil, securityErr("--nats-tls-cert %s must also be a client certificate (extended key usage clientAuth, signed by --nats-tls-client-ca): routes and the coordinator's own connection present it under --nats-tls-client-ca; %v", e.TLSCert, err)
		}
	}
	return f, nil
}

// checkSecurity validates the security settings of an embedded server (safe defaults).
func (c *Config) checkSecurity() error {
	e := &c.NATS.Embedded
	tlsOn := e.TLSCert != "" || e.TLSKey != ""
	if _, err := c.loadEmbeddedTLS(); err != nil {
		return err
	}
	switch {
	case tlsOn && !c.authenticated() && !e.TrustedNetwork:
		return securityErr("--nats-tls-cert without authentication lets anyone who reaches the port subscribe to everything, the job token included: " +
			"add --nats-user (and --nats-worker-user or --nats-worker-nkey for workers), --nats-nkey-seed, or --nats-tls-client-ca; or say the network is trusted with --nats-trusted-network")
	case e.ClusterPort != 0 && c.NATS.User == "" && c.NATS.NkeySeedFile != "" && e.TLSCA == "" && !e.TrustedNetwork:
		return securityErr("--nats-nkey-seed with --nats-cluster-listen: routes authenticate with --nats-user/--nats-password or with client certificates (--nats-tls-client-ca); " +
			"without either anyone who reaches the route port joins the cluster (or say --nats-trusted-network)")
	case (e.WorkerUser != "" || e.WorkerNkey != "" || c.NATS.WorkerNkeysFile != "") && c.NATS.User == "" && c.NATS.NkeySeedFile == "":
		return securityErr("--nats-worker-user / --nats-worker-nkey / --nats-worker-nkeys need the operator's credential too (--nats-user or --nats-nkey-seed): authentication is all or nothing")
	case e.WorkerUser != "" && e.WorkerPassword == "":
		return securityErr("--nats-worker-user needs --nats-worker-password")
	case e.WorkerNkey != "" && !nkeys.IsValidPublicUserKey(e.WorkerNkey):
		return securityErr("--nats-worker-nkey %q: want a public user nkey (U…, from `vlp nkeys`)", e.WorkerNkey)
	}
	var operator string
	if c.NATS.NkeySeedFile != "" {
		pub, err := operatorNkey(c.NATS.NkeySeedFile)
		if err != nil {
			return err
		}
		operator = pub
	}
	keys, err := c.NATS.workerKeys()
	if err != nil {
		return err
	}
	for _, k := range keys.Keys() {
		switch k {
		case operator:
			return securityErr("--nats-worker-nkeys %s lists the operator's key (--nats-nkey-seed) as worker %q: a worker would get the operator's powers", c.NATS.WorkerNkeysFile, keys.Name(k))
		case e.WorkerNkey:
			return securityErr("--nats-worker-nkeys %s lists the shared --nats-worker-nkey as worker %q: give each worker a key of its own", c.NATS.WorkerNkeysFile, keys.Name(k))
		}
	}
	return nil
}

// workerKeys loads WorkerNkeysFile; nil when none is given.
func (n *NATSConfig) workerKeys() (*WorkerKeys, error) {
	if n.WorkerNkeysFile == "" {
		return nil, nil
	}
	k, err := LoadWorkerKeys(n.WorkerNkeysFile)
	if err != nil {
		return nil, securityErr("--nats-worker-nkeys (NATS.WorkerNkeysFile): %v", err)
	}
	return k, nil
}

// operatorNkey reads a user seed file and returns its public key.
func operatorNkey(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", securityErr("--nats-nkey-seed: %v", err)
	}
	kp, err := nkeys.ParseDecoratedNKey(b)
	if err != nil {
		if kp, err = nkeys.FromSeed(bytes.TrimSpace(b)); err != nil {
			return "", securityErr("--nats-nkey-seed %s: not an nkey seed: %v", path, err)
		}
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil {
		return "", securityErr("--nats-nkey-seed %s: %v", path, err)
	}
	if !nkeys.IsValidPublicUserKey(pub) {
		return "", securityErr("--nats-nkey-seed %s: a user seed (SU…) is needed, this one is for %s", path, pub[:1])
	}
	return pub, nil
}

// validateClientTLS checks the client side of TLS: --nats-cert and --nats-key together, files
// that exist.
func (n *NATSConfig) validateClientTLS() error {
	if n.CAFile != "" {
		if _, err := loadCAFile("--nats-ca", n.CAFile); err != nil {
			return err
		}
	}
	if n.CertFile != "" || n.KeyFile != "" {
		if _, err := loadKeyPair("--nats-cert", n.CertFile, "--nats-key", n.KeyFile); err != nil {
			return err
		}
	}
	if n.NkeySeedFile != "" && n.User != "" {
		return securityErr("--nats-user and --nats-nkey-seed: give one")
	}
	return nil
}

// ownConnectOptions are the options of the coordinator's own NATS connections: its client
// credentials and, with an embedded TLS server, TLS. A connection to its own embedded server
// (inProcess) runs over an in-process pipe: it pins the server's own certificate rather than
// checking a host name. Under a required client CA the coordinator presents --nats-cert, or
// else its server certificate (which then needs the clientAuth usage, checked at startup).
func (c *Config) ownConnectOptions(name string, inProcess bool) ([]nats.Option, error) {
	opts, err := c.NATS.ConnectOptions(name)
	if err != nil {
		return nil, err
	}
	if c.NATS.URL != "" {
		return opts, nil
	}
	f, err := c.loadEmbeddedTLS()
	if err != nil || f == nil {
		return opts, err
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: f.routeCA} // --nats-ca, else the client CA
	client := f.cert
	if c.NATS.CertFile != "" {
		if client, err = tls.LoadX509KeyPair(c.NATS.CertFile, c.NATS.KeyFile); err != nil {
			return nil, securityErr("--nats-cert / --nats-key: %v", err)
		}
	}
	tc.Certificates = []tls.Certificate{client}
	if inProcess {
		own := f.cert.Certificate[0]
		tc.InsecureSkipVerify = true // replaced by the pin below: the peer is this process
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, own) {
				return errors.New("coordinator: the in-process NATS server presented another certificate")
			}
			return nil
		}
	}
	return append(opts, nats.Secure(tc)), nil
}

// expectedRoutes is how many other NATS servers this embedded server should be routed to: the
// distinct route URLs that are not this server's own, at most the other Raft voters.
func (c *Config) expectedRoutes() int {
	n := len(c.otherRouteHosts())
	if len(c.Peers) > 0 {
		n = min(n, len(c.Peers)-1)
	}
	return n
}

// otherRouteHosts are the host:port of every route URL of the embedded server but its own,
// each once; none with an external NATS or without a route listener.
func (c *Config) otherRouteHosts() []string {
	e := c.NATS.Embedded
	if c.NATS.URL != "" || e.ClusterPort == 0 {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for _, r := range e.Routes {
		u, err := url.Parse(strings.TrimSpace(r))
		if err != nil || u.Host == "" || seen[u.Host] || isOwnRoute(u, e) {
			continue
		}
		seen[u.Host] = true
		out = append(out, u.Host)
	}
	return out
}

// isOwnRoute reports whether a route URL points at this server's route listener.
func isOwnRoute(u *url.URL, e EmbeddedNATS) bool {
	if u.Port() != fmt.Sprint(e.ClusterPort) {
		return false
	}
	host := u.Hostname()
	if host == e.ClusterHost || host == "localhost" {
		return true
	}
	if h, _ := os.Hostname(); host == h {
		return true
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	if ip.IsLoopback() && (e.ClusterHost == "" || e.ClusterHost == "0.0.0.0" || net.ParseIP(e.ClusterHost).IsLoopback()) {
		return true
	}
	addrs, _ := net.InterfaceAddrs()
	return slices.ContainsFunc(addrs, func(a net.Addr) bool {
		n, ok := a.(*net.IPNet)
		return ok && n.IP.Equal(ip)
	})
}

// Posture is the coordinator's security in one line, logged at startup: what protects the
// clients' and the routes' links, who may connect, and whether requests need the job token.
func (c *Config) Posture() string {
	var p []string
	if c.NATS.URL != "" {
		tlsState := "no TLS configured"
		if c.NATS.CAFile != "" {
			tlsState = "TLS (--nats-ca)"
		}
		p = append(p, "nats=external "+redactURL(c.NATS.URL)+" ("+tlsState+")")
		if c.NATS.WorkerNkeysFile != "" {
			p = append(p, "per-worker-nkeys=checked by the API (the external server's users are its operator's)")
		}
	} else {
		e := c.NATS.Embedded
		clients := "plain TCP"
		if e.TLSCert != "" {
			clients = "TLS"
			if e.TLSCA != "" {
				clients = "mutual TLS"
			}
		}
		p = append(p, "clients="+clients)
		if e.ClusterPort != 0 {
			routes := "plain TCP"
			if e.TLSCert != "" {
				routes = "TLS"
				if e.TLSCA != "" {
					routes = "mutual TLS"
				}
			}
			if c.NATS.User != "" {
				routes += "+password"
			}
			p = append(p, "routes="+routes)
		}
		var auth []string
		if c.NATS.User != "" {
			auth = append(auth, "operator password")
		}
		if c.NATS.NkeySeedFile != "" {
			auth = append(auth, "operator nkey")
		}
		if e.WorkerUser != "" {
			auth = append(auth, "worker password")
		}
		if e.WorkerNkey != "" {
			auth = append(auth, "worker nkey")
		}
		if c.NATS.WorkerNkeysFile != "" {
			auth = append(auth, "per-worker nkeys")
		}
		if e.TLSCA != "" {
			auth = append(auth, "client certificates")
		}
		if len(auth) == 0 {
			auth = append(auth, "NONE (anyone who reaches the port may do anything)")
		}
		p = append(p, "nats-auth="+strings.Join(auth, "+"))
		if e.TrustedNetwork {
			p = append(p, "trusted-network")
		}
	}
	if c.Token != "" {
		p = append(p, "job-token=required")
	} else {
		p = append(p, "job-token=NONE")
	}
	return "security: " + strings.Join(p, " ")
}

func redactURL(s string) string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if u, err := url.Parse(part); err == nil && u.User != nil {
			u.User = url.User("***")
			part = u.String()
		}
		out = append(out, part)
	}
	return strings.Join(out, ",")
}

// logger is Logger, or slog.Default().
func (c *Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

// isLoopbackHost reports whether a listen host only accepts local connections.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
