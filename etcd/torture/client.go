package torture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/corekit/corekit/internal/v2api"
)

// client speaks the v2 keys API over its own HTTP connections.
type client struct {
	hc *http.Client
}

func newClient(timeout time.Duration) *client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: timeout}).DialContext,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}
	return &client{hc: &http.Client{Transport: tr, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *client) close() { c.hc.CloseIdleConnections() }

// response is a decoded /v2/keys answer.
type response struct {
	status    int
	etcdIndex uint64
	event     *v2api.Event
	err       *v2api.Error
}

// do sends one request to base (http://ip:port) for key with query q and an
// optional form body.
func (c *client) do(ctx context.Context, method, base, key string, q, form url.Values) (*response, error) {
	u := base + "/v2/keys" + key
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("torture: request: %w", err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("torture: read body: %w", err)
	}
	r := &response{status: resp.StatusCode}
	r.etcdIndex, _ = strconv.ParseUint(resp.Header.Get("X-Etcd-Index"), 10, 64)
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated {
		if len(strings.TrimSpace(string(b))) == 0 {
			return r, nil // a watch whose connection ended before an event
		}
		var ev v2api.Event
		if err := json.Unmarshal(b, &ev); err != nil {
			return nil, fmt.Errorf("torture: status %d, bad body %q: %w", resp.StatusCode, b, err)
		}
		r.event = &ev
		return r, nil
	}
	var e v2api.Error
	if err := json.Unmarshal(b, &e); err != nil || e.ErrorCode == 0 {
		return nil, fmt.Errorf("torture: status %d, body %q", resp.StatusCode, b)
	}
	r.err = &e
	return r, nil
}

// definite lists the errors after which a write certainly did not happen.
var definite = map[int]bool{
	v2api.EcodeKeyNotFound: true,
	v2api.EcodeTestFailed:  true,
	v2api.EcodeNodeExist:   true,
}

// exec performs one model operation and converts the answer to an Output.
func (c *client) exec(ctx context.Context, base string, in Input) Output {
	q, form := url.Values{}, url.Values(nil)
	method := http.MethodPut
	switch in.Kind {
	case OpGet:
		method = http.MethodGet
		if !in.Local {
			q.Set("quorum", "true")
		}
	case OpSet:
		form = url.Values{"value": {in.Value}}
	case OpCreate:
		form = url.Values{"value": {in.Value}}
		q.Set("prevExist", "false")
	case OpCASVal:
		form = url.Values{"value": {in.Value}}
		q.Set("prevValue", in.PrevValue)
	case OpCASIdx:
		form = url.Values{"value": {in.Value}}
		q.Set("prevIndex", strconv.FormatUint(in.PrevIndex, 10))
	case OpDelete:
		method = http.MethodDelete
	case OpCADVal:
		method = http.MethodDelete
		q.Set("prevValue", in.PrevValue)
	case OpCADIdx:
		method = http.MethodDelete
		q.Set("prevIndex", strconv.FormatUint(in.PrevIndex, 10))
	}
	r, err := c.do(ctx, method, base, in.Key, q, form)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "dial" {
			return Output{NotSent: true, Err: shortErr(err)}
		}
		return Output{Unknown: true, Err: shortErr(err)}
	}
	if r.err != nil {
		if definite[r.err.ErrorCode] {
			return Output{Code: r.err.ErrorCode}
		}
		return Output{Unknown: true, Err: r.err.Error()}
	}
	if r.event == nil || r.event.Node == nil {
		return Output{Unknown: true, Err: fmt.Sprintf("status %d without a node", r.status)}
	}
	out := Output{Value: r.event.Node.StringValue(), Index: r.event.Node.ModifiedIndex}
	if p := r.event.PrevNode; p != nil {
		out.HasPrev, out.PrevValue = true, p.StringValue()
	}
	if want := actionOf(in.Kind); want != "" && r.event.Action != want {
		// A wrong action is a protocol bug; keep the answer and let the
		// report say so through the event check.
		out.Err = fmt.Sprintf("action %q, want %q", r.event.Action, want)
	}
	return out
}

// actionOf is the v2 action a successful op of kind k reports.
func actionOf(k OpKind) string {
	switch k {
	case OpGet:
		return v2api.ActionGet
	case OpSet:
		return v2api.ActionSet
	case OpCreate:
		return v2api.ActionCreate
	case OpCASVal, OpCASIdx:
		return v2api.ActionCompareAndSwap
	case OpDelete:
		return v2api.ActionDelete
	case OpCADVal, OpCADIdx:
		return v2api.ActionCompareAndDelete
	}
	return ""
}

func shortErr(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	s := err.Error()
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}
