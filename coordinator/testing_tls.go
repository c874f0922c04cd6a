package coordinator

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPKI is a certificate authority made for one test, with crypto/x509, and the files it
// issued under a temporary directory: what an operator would make with openssl.
type TestPKI struct {
	t    testing.TB
	dir  string
	ca   *x509.Certificate
	key  *ecdsa.PrivateKey
	CA   string // the CA certificate (PEM)
	next int64
}

// CertFiles are a certificate and its key.
type CertFiles struct {
	Cert, Key string
}

// NewTestPKI makes a fresh CA named name.
func NewTestPKI(t testing.TB, name string) *TestPKI {
	t.Helper()
	p := &TestPKI{t: t, dir: t.TempDir(), next: 2}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p.ca, _ = x509.ParseCertificate(der)
	p.key = key
	p.CA = p.write(name+"-ca.pem", "CERTIFICATE", der)
	return p
}

// Issue makes a certificate for 127.0.0.1 and localhost with the given extended key usages
// (x509.ExtKeyUsageServerAuth for a server, ClientAuth for a client, both for a coordinator
// whose routes and own connection present it under a required client CA).
func (p *TestPKI) Issue(name string, usages ...x509.ExtKeyUsage) CertFiles {
	p.t.Helper()
	return p.issue(name, time.Now().Add(24*time.Hour), usages)
}

// IssueExpired makes a certificate like Issue whose validity ended an hour ago.
func (p *TestPKI) IssueExpired(name string, usages ...x509.ExtKeyUsage) CertFiles {
	p.t.Helper()
	return p.issue(name, time.Now().Add(-time.Hour), usages)
}

func (p *TestPKI) issue(name string, notAfter time.Time, usages []x509.ExtKeyUsage) CertFiles {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	p.next++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.next), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: usages,
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.key)
	if err != nil {
		p.t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		p.t.Fatal(err)
	}
	return CertFiles{Cert: p.write(name+".pem", "CERTIFICATE", der), Key: p.write(name+"-key.pem", "EC PRIVATE KEY", kder)}
}

func (p *TestPKI) write(name, typ string, der []byte) string {
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}
