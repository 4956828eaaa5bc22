// Package audit writes one JSON line per access decision: who (owner, caller) asked for what
// (dataset, snapshot, source, target, ttl), and what was decided and why. The schema is fixed so
// that log pipelines can rely on it; secret values never go through here.
package audit

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// Actions.
const (
	ActionList   = "list"
	ActionAccess = "access"
	ActionFiles  = "files"
	ActionStage  = "stage"
	ActionDelete = "delete"
	ActionExpire = "expire"
	// Cloud Storage: credentials, a signed URL, a commit of the loading zone.
	ActionStorageCredentials = "storage-credentials"
	ActionStorageSignedURL   = "storage-signed-url"
	ActionStorageCommit      = "storage-commit"
)

// Outcomes.
const (
	Allowed = "allowed"
	Denied  = "denied"
	Failed  = "error"
	// Done is the outcome of housekeeping the sidecar did on its own (expiry).
	Done = "done"
)

// Record is one decision.
type Record struct {
	Time   time.Time `json:"time"`
	Action string    `json:"action"`
	Owner  string    `json:"owner"`
	Caller string    `json:"caller,omitempty"`
	Pod    string    `json:"pod,omitempty"`
	// PodUID tells two pods of one name apart (a StatefulSet's, a recreated pod).
	PodUID  string `json:"pod_uid,omitempty"`
	Dataset string `json:"dataset,omitempty"`
	// Org, Space and Access name a Cloud Storage request.
	Org      string `json:"org,omitempty"`
	Space    string `json:"space,omitempty"`
	Access   string `json:"access,omitempty"`
	Snapshot string `json:"snapshot,omitempty"`
	Source   string `json:"source,omitempty"`
	Target   string `json:"target,omitempty"`
	TTL      int64  `json:"ttl,omitempty"` // seconds
	Size     int64  `json:"size,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
	Outcome  string `json:"outcome"`
	Reason   string `json:"reason,omitempty"`
}

// Logger writes records as JSON lines. It is safe for concurrent use; a line is written with a
// single Write so concurrent records never interleave.
type Logger struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
	pod string
	uid string
}

// New returns a Logger writing to w. pod and podUID, when set, are added to every record.
func New(w io.Writer, pod, podUID string) *Logger {
	return &Logger{w: w, now: time.Now, pod: pod, uid: podUID}
}

// Log writes r, filling in the time and pod.
func (l *Logger) Log(r Record) {
	if l == nil {
		return
	}
	if r.Time.IsZero() {
		r.Time = l.now().UTC()
	}
	if r.Pod == "" {
		r.Pod, r.PodUID = l.pod, l.uid
	}
	line, err := json.Marshal(r)
	if err != nil {
		return
	}
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.w.Write(line)
}
