package datasource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ErrNotFound is returned for any 4xx answer; such answers are not retried.
var ErrNotFound = errors.New("not found")

// ErrInvalidURL is returned for URLs that do not parse or are not http(s);
// they are rejected without a request and not retried.
var ErrInvalidURL = errors.New("invalid URL")

// Client fetches URLs the way coreos-cloudinit's pkg/http_client did: 10 s
// per request, up to MaxRetries attempts with backoff doubling from
// InitialBackoff up to MaxBackoff, 4xx never retried, only http(s) URLs.
type Client struct {
	HTTP           *http.Client
	MaxRetries     int
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
}

// DefaultClient returns the anchor's settings: 15 attempts, 50 ms → 5 s.
func DefaultClient() *Client {
	return &Client{HTTP: &http.Client{Timeout: 10 * time.Second}, MaxRetries: 15, InitialBackoff: 50 * time.Millisecond, MaxBackoff: 5 * time.Second}
}

// maxBody caps a fetched document.
const maxBody = 64 << 20

// Get does one request. 2xx → body; 4xx → ErrNotFound; anything else an
// error worth retrying.
func (c *Client) Get(ctx context.Context, raw string) ([]byte, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrInvalidURL, raw, err)
	}
	if !strings.HasPrefix(u.Scheme, "http") {
		return nil, fmt.Errorf("%w %q: not an http(s) URL", ErrInvalidURL, raw)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
		if err != nil {
			return nil, err
		}
		if len(body) > maxBody {
			return nil, fmt.Errorf("%s: body larger than %d bytes", raw, maxBody)
		}
		return body, nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		return nil, fmt.Errorf("%s: %s: %w", raw, resp.Status, ErrNotFound)
	default:
		return nil, fmt.Errorf("%s: %s", raw, resp.Status)
	}
}

// GetRetry is Get with retries (not for 4xx or invalid URLs).
func (c *Client) GetRetry(ctx context.Context, raw string) ([]byte, error) {
	wait := c.InitialBackoff
	var last error
	for attempt := 0; attempt < c.MaxRetries; attempt++ {
		if attempt > 0 {
			wait = min(wait*2, c.MaxBackoff)
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
		}
		body, err := c.Get(ctx, raw)
		if err == nil {
			return body, nil
		}
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalidURL) {
			return nil, err
		}
		last = err
	}
	return nil, fmt.Errorf("Unable to fetch data. Maximum retries reached: %d: %w", c.MaxRetries, last)
}
