package cloudstorage

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"golang.org/x/oauth2"

	"github.com/warden-dev/warden/pkg/brokerapi"
	"github.com/warden-dev/warden/pkg/policy"
)

// Lister lists the objects under a prefix of a bucket with a token, at most limit of them.
type Lister interface {
	List(ctx context.Context, tok *oauth2.Token, bucket, prefix string, limit int) ([]brokerapi.Object, error)
}

// Publisher publishes one message to a Pub/Sub topic with a token, returning its id.
type Publisher interface {
	Publish(ctx context.Context, tok *oauth2.Token, project, topic string, data []byte, attrs map[string]string) (string, error)
}

// Notification is the Pub/Sub message of a commit (JSON); its attributes repeat org, space and
// root_dir for subscription filters.
type Notification struct {
	Event       string             `json:"event"` // "warden.storage.commit"
	Org         string             `json:"org"`
	Space       string             `json:"space"`
	Bucket      string             `json:"bucket"`
	RootDir     string             `json:"root_dir"`
	Objects     []brokerapi.Object `json:"objects"`
	CommittedBy string             `json:"committed_by"`
	CommittedAt string             `json:"committed_at"`
}

// EventCommit is the event attribute of commit notifications.
const EventCommit = "warden.storage.commit"

// Commit lists what was uploaded under dir of the org's loading zone (with a read credential of
// the zone) and announces it on the org's topic as the org's service account. by names who
// committed (audit). Nothing is published when the listing fails or finds nothing.
func (s *Service) Commit(ctx context.Context, t Target, dir, by string) (c brokerapi.Commit, err error) {
	defer func() { s.metrics.committed(err) }()
	if !t.LoadingZone {
		return brokerapi.Commit{}, fmt.Errorf("%w: space %s/%s is not the org's loading zone; commits are for uploads there", ErrNotLoadingZone, t.Org, t.Space)
	}
	if t.Topic == "" || t.Project == "" {
		return brokerapi.Commit{}, fmt.Errorf("%w: org %s names no storage topic (and GCP project) to announce commits on", ErrNoTopic, t.Org)
	}
	full, err := rootDir(t, dir)
	if err != nil {
		return brokerapi.Commit{}, err
	}
	read := t
	read.Access = policy.AccessRead
	cred, err := s.Credential(ctx, read)
	if err != nil {
		return brokerapi.Commit{}, err
	}
	lctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	objs, err := s.opts.Lister.List(lctx, &oauth2.Token{AccessToken: cred.AccessToken, TokenType: "Bearer", Expiry: cred.ExpiresAt}, t.Bucket, full, s.opts.MaxCommitObjects+1)
	if err != nil {
		return brokerapi.Commit{}, err
	}
	switch {
	case len(objs) == 0:
		return brokerapi.Commit{}, fmt.Errorf("%w: no object under gs://%s/%s", ErrNothingToCommit, t.Bucket, full)
	case len(objs) > s.opts.MaxCommitObjects:
		return brokerapi.Commit{}, fmt.Errorf("%w: more than %d objects under gs://%s/%s; commit its subdirectories one by one", ErrTooMany, s.opts.MaxCommitObjects, t.Bucket, full)
	}
	for _, o := range objs {
		// A listing answers for its prefix only; anything else is a broken backend.
		if !strings.HasPrefix(o.Name, full) {
			return brokerapi.Commit{}, fmt.Errorf("%w: Cloud Storage listed %q outside gs://%s/%s", ErrUnavailable, o.Name, t.Bucket, full)
		}
	}
	now := s.opts.Now().UTC()
	n := Notification{Event: EventCommit, Org: t.Org, Space: t.Space, Bucket: t.Bucket, RootDir: full, Objects: objs,
		CommittedBy: by, CommittedAt: now.Format("2006-01-02T15:04:05.000Z07:00")}
	data, err := json.Marshal(n)
	if err != nil {
		return brokerapi.Commit{}, err
	}
	tok, err := s.pubsubToken(ctx, t.ServiceAccount)
	if err != nil {
		return brokerapi.Commit{}, err
	}
	pctx, pcancel := context.WithTimeout(ctx, publishTimeout)
	defer pcancel()
	id, err := s.opts.Publisher.Publish(pctx, tok, t.Project, t.Topic, data, map[string]string{
		"event": EventCommit, "org": t.Org, "space": t.Space, "root_dir": full,
	})
	if err != nil {
		return brokerapi.Commit{}, err
	}
	s.opts.Log.Info("storage commit published", "org", t.Org, "space", t.Space, "root_dir", full, "objects", len(objs), "message", id, "by", by)
	return brokerapi.Commit{Org: t.Org, Space: t.Space, Bucket: t.Bucket, RootDir: full, Objects: objs,
		Topic: "projects/" + t.Project + "/topics/" + t.Topic, MessageID: id, CommittedAt: now, CommittedBy: by}, nil
}
