package sidecar

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/warden-dev/warden/internal/httpjson"
	"github.com/warden-dev/warden/pkg/audit"
	"github.com/warden-dev/warden/pkg/grants"
	"github.com/warden-dev/warden/pkg/policy"
	"github.com/warden-dev/warden/pkg/sidecarapi"
	"github.com/warden-dev/warden/pkg/stage"
)

// The dataset endpoints: list, access, files, stage, delete. Each establishes the caller, asks
// the grant source, acts, and audits the decision.

// request is what every dataset endpoint establishes first.
type request struct {
	caller grants.Caller
	rec    audit.Record
	ctx    context.Context
}

func (s *Server) begin(r *http.Request, action string) (request, error) {
	q := request{rec: audit.Record{Action: action, Owner: s.cfg.Owner, Dataset: r.PathValue("id")}}
	c, err := s.cfg.Callers.Caller(r)
	if err != nil {
		return q, err
	}
	q.caller = c
	q.rec.Caller = c.Name()
	if id := r.PathValue("id"); id != "" {
		if err := policy.ValidDatasetID(id); err != nil {
			return q, fmt.Errorf("%w: %v", errBody, err)
		}
	}
	return q, nil
}

// fail answers an error and audits it.
func (s *Server) fail(w http.ResponseWriter, q request, err error) {
	status, code := statuses.Lookup(err)
	// A refusal of the request (4xx) is a denial; only the sidecar's own failures are errors.
	q.rec.Outcome = audit.Denied
	if status >= 500 {
		q.rec.Outcome = audit.Failed
	}
	if q.rec.Reason == "" { // keep the grant's own reason when it refused
		q.rec.Reason = err.Error()
	}
	s.cfg.Audit.Log(q.rec)
	if status >= 500 {
		s.cfg.Log.Error("request failed", "action", q.rec.Action, "dataset", q.rec.Dataset, "error", err)
	}
	httpjson.WriteError(w, status, code, err.Error())
}

func (s *Server) listDatasets(w http.ResponseWriter, r *http.Request) {
	q, err := s.begin(r, audit.ActionList)
	if err != nil {
		s.fail(w, q, err)
		return
	}
	list, err := s.cfg.Grants.List(r.Context(), s.cfg.Owner, q.caller)
	if err != nil {
		s.fail(w, q, err)
		return
	}
	q.rec.Outcome, q.rec.Reason = audit.Allowed, strconv.Itoa(len(list))+" datasets"
	s.cfg.Audit.Log(q.rec)
	httpjson.Write(w, http.StatusOK, sidecarapi.Datasets{Datasets: list})
}

func (s *Server) access(w http.ResponseWriter, r *http.Request) {
	q, err := s.begin(r, audit.ActionAccess)
	if err != nil {
		s.fail(w, q, err)
		return
	}
	d, err := s.cfg.Grants.Check(r.Context(), s.cfg.Owner, q.caller, q.rec.Dataset)
	if err != nil {
		s.fail(w, q, err)
		return
	}
	status := http.StatusOK
	q.rec.Outcome = audit.Allowed
	if !d.Allowed() {
		status, q.rec.Outcome, q.rec.Reason = http.StatusForbidden, audit.Denied, d.Reason
	}
	s.cfg.Audit.Log(q.rec)
	httpjson.Write(w, status, sidecarapi.Access{DatasetID: d.DatasetID, Owner: d.Owner, Caller: d.Caller})
}

// authorize checks a dataset for the request's caller and resolves the snapshot directory.
func (s *Server) authorize(r *http.Request, q *request, snapshot string) (string, error) {
	d, err := s.cfg.Grants.Check(r.Context(), s.cfg.Owner, q.caller, q.rec.Dataset)
	if err != nil {
		return "", err
	}
	if !d.Allowed() {
		q.rec.Reason = d.Reason
		return "", fmt.Errorf("%w: %s may not read dataset %q on behalf of %s", errDenied, s.cfg.Owner, q.rec.Dataset, q.caller.Name())
	}
	if snapshot == "" {
		q.rec.Snapshot = d.Snapshot
		return d.Snapshot, nil
	}
	dir, ok := d.Snapshots[snapshot]
	if !ok {
		return "", fmt.Errorf("%w: dataset %q has no snapshot named %q", stage.ErrNotFound, q.rec.Dataset, snapshot)
	}
	q.rec.Snapshot = snapshot + " (" + dir + ")"
	return dir, nil
}

func (s *Server) files(w http.ResponseWriter, r *http.Request) {
	q, err := s.begin(r, audit.ActionFiles)
	if err != nil {
		s.fail(w, q, err)
		return
	}
	p := r.URL.Query().Get("path")
	q.rec.Source = p
	dir, err := s.authorize(r, &q, r.URL.Query().Get("snapshot"))
	if err != nil {
		s.fail(w, q, err)
		return
	}
	entries, truncated, err := s.cfg.Stager.List(dir, p)
	if err != nil {
		s.fail(w, q, err)
		return
	}
	q.rec.Outcome = audit.Allowed
	s.cfg.Audit.Log(q.rec)
	out := sidecarapi.Files{Entries: make([]sidecarapi.Entry, len(entries)), Truncated: truncated}
	for i, e := range entries {
		out.Entries[i] = sidecarapi.Entry{Name: e.Name, Size: e.Size, Dir: e.Dir, ModTime: e.ModTime}
	}
	httpjson.Write(w, http.StatusOK, out)
}

// maxTTLSeconds keeps ttl_seconds far from overflowing a time.Duration.
const maxTTLSeconds = 10 * 365 * 24 * 3600

func (s *Server) stage(w http.ResponseWriter, r *http.Request) {
	q, err := s.begin(r, audit.ActionStage)
	if err != nil {
		s.fail(w, q, err)
		return
	}
	var body sidecarapi.StageRequest
	if err := s.decodeBody(w, r, &body); err != nil {
		s.fail(w, q, err)
		return
	}
	q.rec.Source, q.rec.TTL = body.Path, body.TTLSeconds
	if body.TTLSeconds < 0 || body.TTLSeconds > maxTTLSeconds {
		s.fail(w, q, fmt.Errorf("%w: ttl_seconds must be between 0 (default) and %d", errBody, maxTTLSeconds))
		return
	}
	// Path errors are reported before the grant is asked, so a malformed request costs nothing.
	if _, err := stage.CleanRelPath(body.Path, false); err != nil {
		s.fail(w, q, err)
		return
	}
	dir, err := s.authorize(r, &q, body.Snapshot)
	if err != nil {
		s.fail(w, q, err)
		return
	}
	m, err := s.cfg.Stager.Stage(r.Context(), stage.Request{
		Dataset: q.rec.Dataset, Snapshot: body.Snapshot, SnapshotDir: dir, Path: body.Path,
		Caller: q.caller.Name(), CallerDir: stage.CallerDir(s.cfg.Owner, q.caller.User),
		TTL: time.Duration(body.TTLSeconds) * time.Second,
	})
	if err != nil {
		s.fail(w, q, err)
		return
	}
	s.staged.Add(float64(m.Size))
	q.rec.Target, q.rec.TTL, q.rec.Size, q.rec.SHA256, q.rec.Outcome = m.Target, m.TTLSeconds, m.Size, m.SHA256, audit.Allowed
	s.cfg.Audit.Log(q.rec)
	httpjson.Write(w, http.StatusCreated, sidecarapi.Staged{Path: m.AppPath, Name: m.Name, ExpiresAt: m.ExpiresAt, Size: m.Size, SHA256: m.SHA256})
}

func (s *Server) deleteStaged(w http.ResponseWriter, r *http.Request) {
	q, err := s.begin(r, audit.ActionDelete)
	if err != nil {
		s.fail(w, q, err)
		return
	}
	name := r.PathValue("name")
	q.rec.Target = name
	m, err := s.cfg.Stager.Delete(name, stage.CallerDir(s.cfg.Owner, q.caller.User))
	if err != nil {
		s.fail(w, q, err)
		return
	}
	q.rec.Dataset, q.rec.Source, q.rec.Target, q.rec.TTL, q.rec.Size, q.rec.Outcome = m.Dataset, m.Source, m.Target, m.TTLSeconds, m.Size, audit.Allowed
	s.cfg.Audit.Log(q.rec)
	w.WriteHeader(http.StatusNoContent)
}
