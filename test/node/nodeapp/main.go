// Command nodeapp is the app container of the real-node suite (test/node): a static binary in a
// FROM-scratch image that acts inside the pod on the suite's behalf.
//
// Its first instruction prints {"event":"start","time":...}; with WARDEN_PORT set it then asks
// the sidecar's /readyz exactly once and prints the answer (the sidecar must already be ready:
// the kubelet starts app containers only after a native sidecar's startup probe passed).
//
//	nodeapp serve       answer POST /do on :8080 (the pod's IP) with what an operation did
//	                    inside the pod: sidecar HTTP calls, reads, writes, listings
//	nodeapp job ID PATH stage PATH of dataset ID, read the copy at the path the answer gave,
//	                    check its SHA-256, exit 0 (1 on any failure)
//	nodeapp sleep       only the start line, then wait for SIGTERM (start-up benchmarks)
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	start := time.Now()
	emit(map[string]any{"event": "start", "time": start.Format(time.RFC3339Nano)})
	// As PID 1 of its container, nodeapp would ignore SIGTERM without a handler, and every pod
	// deletion would wait out its grace period.
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-term
		os.Exit(0)
	}()
	if port := os.Getenv("WARDEN_PORT"); port != "" {
		r := sidecar(Op{Method: "GET", Path: "/readyz"})
		emit(map[string]any{"event": "sidecar-first-try", "status": r.Status, "error": r.Error})
	}
	mode := "sleep"
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	switch mode {
	case "serve":
		http.HandleFunc("POST /do", func(w http.ResponseWriter, req *http.Request) {
			var op Op
			if err := json.NewDecoder(req.Body).Decode(&op); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(do(op))
		})
		fmt.Fprintln(os.Stderr, http.ListenAndServe(":8080", nil))
		os.Exit(1)
	case "job":
		if err := job(os.Args[2], os.Args[3]); err != nil {
			emit(map[string]any{"event": "job", "error": err.Error()})
			os.Exit(1)
		}
		emit(map[string]any{"event": "job", "ok": true})
	case "sleep":
		select {}
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", mode)
		os.Exit(2)
	}
}

func emit(v any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

// Op is one thing to do inside the pod.
type Op struct {
	// Op is "http" (a call to the sidecar), "read", "write", "ls" or "walk" (every path below
	// Path, without /proc, /sys and /dev).
	Op      string            `json:"op"`
	Method  string            `json:"method,omitempty"`
	Path    string            `json:"path"`
	Body    string            `json:"body,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
}

// Result of an Op. Errno is the system error number of a failed file operation (e.g. EROFS).
type Result struct {
	Status  int      `json:"status,omitempty"`
	Body    string   `json:"body,omitempty"`
	Data    string   `json:"data,omitempty"`
	Entries []string `json:"entries,omitempty"`
	Error   string   `json:"error,omitempty"`
	Errno   int      `json:"errno,omitempty"`
}

func do(op Op) Result {
	switch op.Op {
	case "http":
		return sidecar(op)
	case "read":
		b, err := os.ReadFile(op.Path)
		return fileResult(Result{Data: string(b)}, err)
	case "write":
		return fileResult(Result{}, os.WriteFile(op.Path, []byte(op.Body), 0o644))
	case "ls":
		es, err := os.ReadDir(op.Path)
		r := Result{}
		for _, e := range es {
			r.Entries = append(r.Entries, e.Name())
		}
		return fileResult(r, err)
	case "walk":
		r := Result{}
		err := filepath.WalkDir(op.Path, func(p string, d fs.DirEntry, err error) error {
			if p == "/proc" || p == "/sys" || p == "/dev" {
				return filepath.SkipDir
			}
			if err == nil {
				r.Entries = append(r.Entries, p)
			}
			return nil
		})
		return fileResult(r, err)
	}
	return Result{Error: "unknown op " + op.Op}
}

func fileResult(r Result, err error) Result {
	if err != nil {
		r.Error = err.Error()
		var errno syscall.Errno
		if errors.As(err, &errno) {
			r.Errno = int(errno)
		}
	}
	return r
}

var client = &http.Client{Timeout: 30 * time.Second}

// sidecar calls the sidecar on 127.0.0.1:$WARDEN_PORT, as app code does.
func sidecar(op Op) Result {
	req, err := http.NewRequest(op.Method, "http://127.0.0.1:"+os.Getenv("WARDEN_PORT")+op.Path, strings.NewReader(op.Body))
	if err != nil {
		return Result{Error: err.Error()}
	}
	for k, v := range op.Headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return Result{Error: err.Error()}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return Result{Status: resp.StatusCode, Body: string(b)}
}

// job is a batch run: list, stage, read the copy, check it.
func job(dataset, path string) error {
	r := sidecar(Op{Method: "GET", Path: "/v1/datasets"})
	if r.Status != http.StatusOK || !strings.Contains(r.Body, `"`+dataset+`"`) {
		return fmt.Errorf("list datasets: %d %s %s", r.Status, r.Body, r.Error)
	}
	body, _ := json.Marshal(map[string]any{"path": path, "ttl_seconds": 600})
	r = sidecar(Op{Method: "POST", Path: "/v1/datasets/" + dataset + "/stage", Body: string(body)})
	if r.Status != http.StatusCreated {
		return fmt.Errorf("stage: %d %s %s", r.Status, r.Body, r.Error)
	}
	var staged struct {
		Path   string `json:"path"`
		SHA256 string `json:"sha256"`
	}
	if err := json.Unmarshal([]byte(r.Body), &staged); err != nil {
		return err
	}
	data, err := os.ReadFile(staged.Path)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != staged.SHA256 {
		return fmt.Errorf("%s: sha256 %x, the sidecar said %s", staged.Path, sum, staged.SHA256)
	}
	emit(map[string]any{"event": "staged", "path": staged.Path, "bytes": len(data), "head": string(bytes.SplitN(data, []byte("\n"), 2)[0])})
	return nil
}
