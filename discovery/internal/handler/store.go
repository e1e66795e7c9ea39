package handler

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/corekit/corekit/internal/v2api"
	"github.com/corekit/corekit/internal/v2client"
)

// store is the handful of etcd v2 keys operations the service performs on its
// own behalf (creating, inspecting and deleting tokens), over the shared v2
// client. Requests that etcd members make are not decoded: they are proxied
// (proxy.go).
type store struct {
	c       *v2client.Client
	timeout time.Duration // per request
}

func newStore(cfg Config) (*store, error) {
	rt := cfg.Client.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	c, err := v2client.New(v2client.Config{
		Endpoints: []string{cfg.Store.String()},
		Transport: rt,
		Logger:    cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	return &store{c: c, timeout: cfg.RequestTimeout}, nil
}

// get reads key; an etcd error comes back as *v2api.Error.
func (s *store) get(ctx context.Context, key string, recursive bool) (*v2client.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.c.Get(ctx, key, &v2client.GetOptions{Recursive: recursive})
}

// create writes key only if it does not exist yet.
func (s *store) create(ctx context.Context, key, value string) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, err := s.c.Set(ctx, key, value, &v2client.SetOptions{PrevExist: v2client.PrevNoExist})
	return err
}

// mkdirTTL creates directory key, which the store expires after ttl.
func (s *store) mkdirTTL(ctx context.Context, key string, ttl time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, err := s.c.Set(ctx, key, "", &v2client.SetOptions{Dir: true, PrevExist: v2client.PrevNoExist, TTL: ttl})
	return err
}

// removeAll deletes key and everything under it.
func (s *store) removeAll(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, err := s.c.Delete(ctx, key, &v2client.DeleteOptions{Recursive: true})
	return err
}

// isCode reports whether err is a *v2api.Error with the given code.
func isCode(err error, code int) bool {
	var e *v2api.Error
	return errors.As(err, &e) && e.ErrorCode == code
}
