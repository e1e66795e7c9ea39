package handler

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/corekit/corekit/discovery/internal/token"
)

// serveNew creates a token: GET, PUT or POST /new[?size=N]. The answer is
// the token URL as plain text without a trailing newline (curl users rely on
// that), and the deletion secret in the SecretHeader response header.
func (h *Handler) serveNew(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodPut, http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, PUT, POST")
		writeText(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on /new; use GET, PUT or POST\n", r.Method))
		return
	}
	if ok, wait := h.limiter.allow(clientIP(r)); !ok {
		h.metrics.event(evRateLimited)
		secs := int(math.Ceil(wait.Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeText(w, http.StatusTooManyRequests, fmt.Sprintf("too many new tokens requested from %s; try again in %d s\n", clientIP(r), secs))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, h.cfg.MaxBody)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeText(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes\n", h.cfg.MaxBody))
			return
		}
		writeText(w, http.StatusBadRequest, fmt.Sprintf("invalid request: %v\n", err))
		return
	}
	size, err := token.ParseSize(r.Form.Get("size"), h.cfg.MaxSize)
	if err != nil {
		writeText(w, http.StatusBadRequest, err.Error()+"\n")
		return
	}
	tok, secret, err := h.createToken(r.Context(), size)
	if err != nil {
		h.log.Error("setupToken returned", "err", err)
		writeText(w, http.StatusServiceUnavailable, "Unable to generate token\n")
		return
	}
	h.metrics.event(evTokensCreated)
	h.log.Info("New cluster created", "token", tok, "size", size)
	w.Header().Set(SecretHeader, secret)
	w.Header().Set("Cache-Control", "no-store")
	writeText(w, http.StatusOK, h.cfg.PublicURL+"/"+tok)
}

// createToken writes a new token directory (expiring after TokenTTL) with
// its size, creation time and secret hash. On failure it removes what it
// wrote, so a failed /new leaves nothing behind.
func (h *Handler) createToken(ctx context.Context, size int) (tok, secret string, err error) {
	tok, err = token.New(h.cfg.Rand)
	if err != nil {
		return "", "", err
	}
	secret, err = token.NewSecret(h.cfg.Rand)
	if err != nil {
		return "", "", err
	}
	if err := h.store.mkdirTTL(ctx, token.Dir(tok), h.cfg.TokenTTL); err != nil {
		return "", "", fmt.Errorf("create %s: %w", token.Dir(tok), err)
	}
	cfgKey := token.ConfigKey(tok)
	for _, kv := range [][2]string{
		{cfgKey + "/" + token.CreatedName, h.cfg.Now().UTC().Format(time.RFC3339)},
		{cfgKey + "/" + token.SecretName, token.HashSecret(secret)},
		{token.SizeKey(tok), strconv.Itoa(size)},
	} {
		if err := h.store.create(ctx, kv[0], kv[1]); err != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.cfg.RequestTimeout)
			_ = h.store.removeAll(cctx, token.Dir(tok))
			cancel()
			return "", "", fmt.Errorf("create %s: %w", kv[0], err)
		}
	}
	return tok, secret, nil
}
