package serve

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// deadline only stops a test that would otherwise hang; nothing is timed against it.
const deadline = 10 * time.Second

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return ln
}

// run starts Until and returns the channel its result arrives on.
func run(ctx context.Context, srv *http.Server, ln net.Listener) <-chan error {
	done := make(chan error, 1)
	go func() { done <- Until(ctx, srv, ln) }()
	return done
}

func wait(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(deadline):
		t.Fatal("Until did not return")
		return nil
	}
}

func get(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestServesUntilCancelled(t *testing.T) {
	ln := listen(t)
	url := "http://" + ln.Addr().String() + "/"
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })}
	ctx, cancel := context.WithCancel(context.Background())
	done := run(ctx, srv, ln)

	status, body, err := get(url)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "ok", body)
	select {
	case err := <-done:
		t.Fatalf("Until returned while its context was live: %v", err)
	default:
	}

	cancel()
	assert.NoError(t, wait(t, done), "a cancelled context is a normal stop, not an error")
	_, _, err = get(url)
	assert.Error(t, err, "the listener is closed once Until returns")
}

func TestInFlightRequestFinishesAfterCancel(t *testing.T) {
	ln := listen(t)
	started, release := make(chan struct{}), make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		<-release
		_, _ = io.WriteString(w, "finished")
	})}
	shuttingDown := make(chan struct{})
	srv.RegisterOnShutdown(func() { close(shuttingDown) })
	ctx, cancel := context.WithCancel(context.Background())
	done := run(ctx, srv, ln)

	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		status, body, err := get("http://" + ln.Addr().String() + "/")
		got <- result{status, body, err}
	}()
	select {
	case <-started:
	case <-time.After(deadline):
		t.Fatal("the request never reached the handler")
	}
	cancel()
	select {
	case <-shuttingDown:
	case <-time.After(deadline):
		t.Fatal("cancelling the context did not shut the server down")
	}
	close(release) // only now, while the shutdown is under way, does the handler answer
	select {
	case r := <-got:
		require.NoError(t, r.err, "a request in flight when the context ends gets its answer")
		assert.Equal(t, http.StatusOK, r.status)
		assert.Equal(t, "finished", r.body)
	case <-time.After(deadline):
		t.Fatal("the in-flight request never finished")
	}
	assert.NoError(t, wait(t, done))
}

// failingListener fails every Accept with err.
type failingListener struct {
	net.Listener
	err error
}

func (l failingListener) Accept() (net.Conn, error) { return nil, l.err }

func TestServeErrors(t *testing.T) {
	boom := errors.New("accept: too many open files in an unexpected way")
	for _, tc := range []struct {
		name   string
		ln     func(t *testing.T) net.Listener
		cancel bool // the context is cancelled before Until starts
		want   func(t *testing.T, err error)
	}{
		{
			name: "accept fails",
			ln:   func(t *testing.T) net.Listener { return failingListener{listen(t), boom} },
			want: func(t *testing.T, err error) { assert.ErrorIs(t, err, boom) },
		},
		{
			name: "listener already closed",
			ln: func(t *testing.T) net.Listener {
				ln := listen(t)
				require.NoError(t, ln.Close())
				return ln
			},
			want: func(t *testing.T, err error) { assert.ErrorIs(t, err, net.ErrClosed) },
		},
		{
			name:   "context already cancelled",
			ln:     listen,
			cancel: true,
			want:   func(t *testing.T, err error) { assert.NoError(t, err) },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln := tc.ln(t)
			t.Cleanup(func() { _ = ln.Close() })
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				cancel()
			}
			err := wait(t, run(ctx, &http.Server{Handler: http.NotFoundHandler()}, ln))
			tc.want(t, err)
			cancel() // after a failure, ending the context must not touch the stopped server
		})
	}
}

// Until returns only after a request in flight when the context ended has been answered.
func TestUntilWaitsForInFlightRequests(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	entered, release := make(chan struct{}), make(chan struct{})
	var answered atomic.Bool
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		answered.Store(true)
	})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Until(ctx, srv, ln) }()
	go func() { _, _ = http.Get("http://" + ln.Addr().String()) }()
	<-entered
	cancel()
	go func() {
		time.Sleep(50 * time.Millisecond) // let shutdown begin while the request is held
		close(release)
	}()
	require.NoError(t, <-done)
	assert.True(t, answered.Load(), "Until returned before the request in flight was answered")
}
