package handler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/corekit/corekit/discovery/internal/token"
	"github.com/corekit/corekit/internal/v2api"
)

// target is a parsed token path.
type target struct {
	tok    string
	kind   targetKind
	member string // kind == targetMember
}

type targetKind int

const (
	targetDir    targetKind = iota // /<token> or /<token>/
	targetMember                   // /<token>/<member>
	targetSize                     // /<token>/_config/size
)

// key is the store key the target maps to.
func (t target) key() string {
	switch t.kind {
	case targetMember:
		return token.MemberKey(t.tok, t.member)
	case targetSize:
		return token.SizeKey(t.tok)
	}
	return token.Dir(t.tok)
}

// allowed lists the methods of each kind of target.
func (t target) allowed() []string {
	switch t.kind {
	case targetMember:
		return []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete}
	case targetSize:
		return []string{http.MethodGet, http.MethodHead}
	}
	return []string{http.MethodGet, http.MethodHead, http.MethodDelete}
}

// pathError is a request that cannot name a token path, with the answer to
// give.
type pathError struct {
	status int
	err    *v2api.Error
}

// parseTarget maps an escaped request path to a target. It is pure; the
// errors carry the status and etcd-style body to answer with.
func parseTarget(p string) (target, *pathError) {
	if strings.Contains(p, "%") {
		return target{}, &pathError{http.StatusBadRequest, v2api.NewError(v2api.EcodeInvalidField,
			"escaped characters are not allowed in discovery paths", 0)}
	}
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if err := token.Check(segs[0]); err != nil {
		return target{}, &pathError{http.StatusNotFound, v2api.NewError(v2api.EcodeKeyNotFound, err.Error(), 0)}
	}
	t := target{tok: segs[0]}
	switch {
	case len(segs) == 1 || len(segs) == 2 && segs[1] == "":
		t.kind = targetDir
	case len(segs) == 2:
		if err := token.CheckMember(segs[1]); err != nil {
			return target{}, &pathError{http.StatusBadRequest, v2api.NewError(v2api.EcodeInvalidField, err.Error(), 0)}
		}
		if token.Reserved(segs[1]) && segs[1] != token.StateName {
			return target{}, &pathError{http.StatusForbidden, v2api.NewError(v2api.EcodeKeyIsPreserved,
				fmt.Sprintf("%q is reserved; only %s and member keys can be used", segs[1], token.StateName), 0)}
		}
		t.kind, t.member = targetMember, segs[1]
	case len(segs) == 3 && segs[1] == token.ConfigDir && segs[2] == token.SizeName:
		t.kind = targetSize
	default:
		return target{}, &pathError{http.StatusNotFound, v2api.NewError(v2api.EcodeKeyNotFound,
			"no such discovery path: use /<token>, /<token>/<member> or /<token>/_config/size", 0)}
	}
	return t, nil
}

// tokenMeta is what the service recorded about a token under _config.
type tokenMeta struct {
	size    int // 0 when the size key is missing or not a number
	created time.Time
}

// serveToken handles every /<token>… request: validate, check the token
// exists and has not expired, apply the service's own rules (HTML view,
// sealing, authorised deletion), then proxy to the store.
func (h *Handler) serveToken(w http.ResponseWriter, r *http.Request, p string) {
	t, perr := parseTarget(p)
	if perr != nil {
		writeError(w, perr.status, perr.err)
		return
	}
	allowed := t.allowed()
	if !contains(allowed, r.Method) {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeText(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s\n", r.Method, p))
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, http.StatusBadRequest, v2api.NewError(v2api.EcodeInvalidForm, "bad query string: "+err.Error(), 0))
		return
	}
	if r.Method == http.MethodPut && q.Get("dir") != "" && q.Get("dir") != "false" {
		writeError(w, http.StatusBadRequest, v2api.NewError(v2api.EcodeInvalidField, "dir: a member is a key, not a directory", 0))
		return
	}
	var body []byte
	if r.Method == http.MethodPut {
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBody))
		if err != nil {
			writeError(w, http.StatusRequestEntityTooLarge, v2api.NewError(v2api.EcodeInvalidForm,
				fmt.Sprintf("request body larger than %d bytes", h.cfg.MaxBody), 0))
			return
		}
	}

	ctx := r.Context()
	meta, ok := h.tokenMeta(ctx, w, t.tok)
	if !ok {
		return
	}
	switch {
	case r.Method == http.MethodDelete:
		if !h.authorised(ctx, w, r, t.tok) {
			return
		}
		h.metrics.event(evDeleted)
		if t.kind == targetDir {
			q = url.Values{"recursive": {"true"}}
		}
		h.proxy(w, r, t.key(), q.Encode(), nil)
		return
	case t.kind == targetDir && r.Method == http.MethodGet && q.Get("wait") == "" && wantsHTML(r):
		h.servePage(w, r, t.tok, meta)
		return
	case t.kind == targetMember && r.Method == http.MethodPut && !token.Reserved(t.member):
		unlock := h.lockToken(t.tok)
		defer unlock()
		if !h.admit(ctx, w, t, meta) {
			return
		}
	}
	h.proxy(w, r, t.key(), r.URL.RawQuery, body)
}

// tokenMeta reads the token's _config and answers 404 for unknown or
// expired tokens (and 503 when the store fails). ok is false when an answer
// was written.
func (h *Handler) tokenMeta(ctx context.Context, w http.ResponseWriter, tok string) (tokenMeta, bool) {
	ev, err := h.store.get(ctx, token.ConfigKey(tok), true)
	if err != nil {
		var e *v2api.Error
		if errors.As(err, &e) && e.ErrorCode == v2api.EcodeKeyNotFound {
			writeError(w, http.StatusNotFound, v2api.NewError(v2api.EcodeKeyNotFound, token.Dir(tok), e.Index))
			return tokenMeta{}, false
		}
		h.storeFailed(w, err)
		return tokenMeta{}, false
	}
	var m tokenMeta
	if ev.Node != nil {
		for _, n := range ev.Node.Nodes {
			switch strings.TrimPrefix(n.Key, token.ConfigKey(tok)+"/") {
			case token.SizeName:
				m.size, _ = strconv.Atoi(n.StringValue())
			case token.CreatedName:
				m.created, _ = time.Parse(time.RFC3339, n.StringValue())
			}
		}
	}
	if !m.created.IsZero() && !h.cfg.Now().Before(m.created.Add(h.cfg.TokenTTL)) {
		// The store's TTL normally removes the directory first; this covers
		// clock skew and stores without TTL support.
		h.metrics.event(evExpired)
		_ = h.store.removeAll(ctx, token.Dir(tok))
		writeError(w, http.StatusNotFound, v2api.NewError(v2api.EcodeKeyNotFound, token.Dir(tok), 0))
		return tokenMeta{}, false
	}
	return m, true
}

// members lists the registered member keys of a token (hidden keys such as
// _config and _state are not listed by the store), sorted by createdIndex.
func (h *Handler) members(ctx context.Context, tok string) ([]*v2api.Node, error) {
	ev, err := h.store.get(ctx, token.Dir(tok), false)
	if err != nil {
		return nil, err
	}
	var ns []*v2api.Node
	if ev.Node != nil {
		ns = ev.Node.Nodes
	}
	sort.SliceStable(ns, func(i, j int) bool { return ns[i].CreatedIndex < ns[j].CreatedIndex })
	return ns, nil
}

// admit enforces sealing: a token with size members takes no new member.
// Updates of an existing member go through (the store then applies
// prevExist and friends, so a duplicate registration still gets etcd's
// 412/105). ok is false when an answer was written. The caller holds the
// token's lock.
func (h *Handler) admit(ctx context.Context, w http.ResponseWriter, t target, meta tokenMeta) bool {
	if meta.size <= 0 {
		return true // not ours to judge: etcd members report the bad size themselves
	}
	ns, err := h.members(ctx, t.tok)
	if err != nil {
		h.storeFailed(w, err)
		return false
	}
	for _, n := range ns {
		if n.Key == t.key() {
			return true
		}
	}
	if len(ns) >= meta.size {
		h.metrics.event(evSealed)
		e := v2api.NewError(103, fmt.Sprintf("discovery token is sealed: all %d members have registered; generate a new token (or DELETE a stale member with the token's secret)", meta.size), 0)
		writeError(w, http.StatusForbidden, e)
		return false
	}
	return true
}

// authorised checks the deletion secret. ok is false when an answer was
// written.
func (h *Handler) authorised(ctx context.Context, w http.ResponseWriter, r *http.Request, tok string) bool {
	secret := r.Header.Get(SecretHeader)
	if secret == "" {
		writeError(w, http.StatusUnauthorized, v2api.NewError(v2api.EcodeUnauthorized,
			"DELETE needs the "+SecretHeader+" header that /new returned with this token", 0))
		return false
	}
	ev, err := h.store.get(ctx, token.ConfigKey(tok)+"/"+token.SecretName, false)
	if err != nil && !isCode(err, v2api.EcodeKeyNotFound) {
		h.storeFailed(w, err)
		return false
	}
	if err != nil || !token.SecretMatches(secret, ev.Node.StringValue()) {
		writeError(w, http.StatusForbidden, v2api.NewError(v2api.EcodeUnauthorized,
			SecretHeader+" does not match this token's secret", 0))
		return false
	}
	return true
}

// proxy forwards the request to key in the store with the given raw query
// and body, and copies the answer back: status, etcd's headers and body.
// Watches (wait=true) end after LongPoll with 200 and an empty body, which
// etcd's client answers by polling again.
func (h *Handler) proxy(w http.ResponseWriter, r *http.Request, key, rawQuery string, body []byte) {
	q, _ := url.ParseQuery(rawQuery)
	wait := q.Get("wait") == "true"
	limit := h.cfg.RequestTimeout
	if wait {
		limit = h.cfg.LongPoll
	}
	ctx, cancel := context.WithTimeout(r.Context(), limit)
	defer cancel()

	u := *h.cfg.Store
	u.Path, u.RawQuery = "/v2/keys"+key, rawQuery
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, u.String(), rd)
	if err != nil {
		h.storeFailed(w, err)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := h.cfg.Client.Do(req)
	if err != nil {
		switch {
		case r.Context().Err() != nil:
			// The client went away (an etcd member gave up a watch): no one
			// to answer.
		case wait && errors.Is(ctx.Err(), context.DeadlineExceeded):
			w.WriteHeader(http.StatusOK) // long poll over: empty body, poll again
		default:
			h.storeFailed(w, err)
		}
		return
	}
	defer resp.Body.Close()
	for _, k := range []string{"Content-Type", v2api.HeaderEtcdIndex, v2api.HeaderRaftIndex, v2api.HeaderRaftTerm, v2api.HeaderClusterID} {
		if v := resp.Header.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	if wait {
		_ = http.NewResponseController(w).Flush()
	}
	if _, err := io.Copy(w, resp.Body); err != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		h.log.Debug("proxy: copy body", "key", key, "err", err)
	}
}

// storeFailed answers 503 with an etcd-style error. etcd members treat 5xx
// as "cluster unavailable" and retry with backoff, which is right here.
func (h *Handler) storeFailed(w http.ResponseWriter, err error) {
	h.log.Error("store request failed", "err", err)
	writeError(w, http.StatusServiceUnavailable, v2api.NewError(v2api.EcodeRaftInternal, "discovery store unavailable", 0))
}

// wantsHTML reports whether the client prefers an HTML page (a browser)
// over etcd's JSON.
func wantsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
