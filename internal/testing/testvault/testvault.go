// Package testvault runs a real Vault dev server on loopback (the binary `make vault` builds
// from the Go module proxy) for the e2e and node suites and `make demo`, plus a TCP proxy in front of it
// that can cut the connection, so tests can take Vault away and bring it back without losing
// the dev server's in-memory data.
package testvault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/warden-dev/warden/internal/testing/testenv"
)

// RootToken of the dev server.
const RootToken = "warden-dev-root"

// Binary is the Vault binary: $WARDEN_VAULT, else where `make vault` caches it.
func Binary() (string, error) {
	if b := os.Getenv("WARDEN_VAULT"); b != "" {
		return b, nil
	}
	out, err := exec.Command(filepath.Join(testenv.RepoRoot(), "hack/tools/build.sh"), "path-vault").Output()
	if err != nil {
		return "", fmt.Errorf("locating vault: %w", err)
	}
	b := strings.TrimSpace(string(out))
	if _, err := os.Stat(b); err != nil {
		return "", fmt.Errorf("vault not found at %s: run `make vault` (builds it from the Go module proxy, cached in ~/.cache/warden)", b)
	}
	return b, nil
}

// Server is a running dev server.
type Server struct {
	Addr string // http://127.0.0.1:PORT
	Bin  string
	cmd  *exec.Cmd
	home string
	log  *os.File
}

// Start runs `vault server -dev` on a free loopback port and waits until it answers.
func Start(dir string) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	home := filepath.Join(dir, "vault-home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "vault.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "server", "-dev", "-dev-listen-address="+addr, "-dev-root-token-id="+RootToken)
	// HOME keeps the dev server's token helper file out of the real home directory.
	cmd.Env = append(os.Environ(), "VAULT_DISABLE_MLOCK=true", "HOME="+home)
	cmd.Stdout, cmd.Stderr = logf, logf
	// A test binary killed mid-run must not leave the dev server behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{Addr: "http://" + addr, Bin: bin, cmd: cmd, home: home, log: logf}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.Addr + "/v1/sys/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Stop()
	return nil, fmt.Errorf("vault dev server did not start (log: %s)", logf.Name())
}

// Stop ends the server.
func (s *Server) Stop() {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
	s.log.Close()
}

// CLI runs the vault binary as a client of this server (as root) with extra environment.
func (s *Server) CLI(ctx context.Context, env []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, s.Bin, args...)
	cmd.Env = append(os.Environ(), append([]string{"VAULT_ADDR=" + s.Addr, "VAULT_TOKEN=" + RootToken, "HOME=" + s.home}, env...)...)
	return cmd.CombinedOutput()
}

// Script runs a shell script with this server's vault binary first on PATH, as root.
func (s *Server) Script(ctx context.Context, env []string, script string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, script, args...)
	cmd.Env = append(os.Environ(), append([]string{
		"PATH=" + filepath.Dir(s.Bin) + ":" + os.Getenv("PATH"),
		"VAULT_ADDR=" + s.Addr, "VAULT_TOKEN=" + RootToken, "HOME=" + s.home,
	}, env...)...)
	return cmd.CombinedOutput()
}

// Proxy forwards TCP to a target until it is cut; Restore lets connections through again.
type Proxy struct {
	Addr   string // http://127.0.0.1:PORT
	target string
	ln     net.Listener

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
}

// NewProxy listens on a free loopback port and forwards to target (host:port).
func NewProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Addr: "http://" + ln.Addr().String(), target: strings.TrimPrefix(target, "http://"), ln: ln, conns: map[net.Conn]struct{}{}}
	go p.serve()
	return p, nil
}

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		go p.pipe(c)
	}
}

func (p *Proxy) pipe(c net.Conn) {
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		c.Close()
	}()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.conns[up] = struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
	up.Close()
	p.mu.Lock()
	delete(p.conns, up)
	p.mu.Unlock()
}

// Cut refuses new connections and drops open ones: Vault is unreachable.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
}

// Restore lets connections through again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// Close stops the proxy.
func (p *Proxy) Close() error {
	p.Cut()
	err := p.ln.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
