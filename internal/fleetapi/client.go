package fleetapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Client talks to fleetd's API v1.
type Client struct {
	hc   *http.Client
	base string // scheme://host without trailing slash
}

// NewClient returns a client for endpoint: "unix:///path/to.sock" (or
// "file:///…") or "http(s)://host:port". hc may be nil; for unix
// endpoints its transport is replaced by one dialing the socket.
func NewClient(endpoint string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, err
	}
	if hc == nil {
		hc = &http.Client{}
	}
	switch u.Scheme {
	case "unix", "file":
		if u.Host != "" {
			return nil, fmt.Errorf("unable to connect to host %q with scheme %q", u.Host, u.Scheme)
		}
		sock := u.Path
		tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}
		c := *hc
		c.Transport = tr
		return &Client{hc: &c, base: "http://domain-sock"}, nil
	case "http", "https":
		return &Client{hc: hc, base: strings.TrimSuffix(u.Scheme+"://"+u.Host, "/")}, nil
	case "":
		return nil, errors.New("URL scheme undefined")
	}
	return nil, fmt.Errorf("unsupported URL scheme %q", u.Scheme)
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, body any, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	if q == nil {
		q = url.Values{}
	}
	q.Set("alt", "json")
	req, err := http.NewRequestWithContext(ctx, method, c.base+BasePath+path+"?"+q.Encode(), rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 300 {
		var eb ErrorBody
		if json.Unmarshal(b, &eb) == nil && eb.Error != nil {
			return resp.StatusCode, eb.Error
		}
		return resp.StatusCode, &Error{Code: resp.StatusCode, Message: strings.TrimSpace(string(b))}
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

func isNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == http.StatusNotFound
}

// Units lists every unit (following page tokens).
func (c *Client) Units(ctx context.Context) ([]*Unit, error) {
	var all []*Unit
	tok := ""
	for {
		q := url.Values{}
		if tok != "" {
			q.Set("nextPageToken", tok)
		}
		var p UnitPage
		if _, err := c.do(ctx, http.MethodGet, "/units", q, nil, &p); err != nil {
			return nil, err
		}
		all = append(all, p.Units...)
		if p.NextPageToken == "" {
			return all, nil
		}
		tok = p.NextPageToken
	}
}

// Unit returns one unit, or nil, nil when it does not exist.
func (c *Client) Unit(ctx context.Context, name string) (*Unit, error) {
	var u Unit
	_, err := c.do(ctx, http.MethodGet, "/units/"+url.PathEscape(name), nil, nil, &u)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// CreateUnit creates (or, with different options, replaces) a unit.
func (c *Client) CreateUnit(ctx context.Context, u *Unit) error {
	_, err := c.do(ctx, http.MethodPut, "/units/"+url.PathEscape(u.Name), nil, u, nil)
	return err
}

// SetUnitTargetState sets the desired state of an existing unit.
func (c *Client) SetUnitTargetState(ctx context.Context, name, state string) error {
	_, err := c.do(ctx, http.MethodPut, "/units/"+url.PathEscape(name), nil, &Unit{Name: name, DesiredState: state}, nil)
	return err
}

// DestroyUnit deletes a unit.
func (c *Client) DestroyUnit(ctx context.Context, name string) error {
	_, err := c.do(ctx, http.MethodDelete, "/units/"+url.PathEscape(name), nil, nil, nil)
	return err
}

// UnitStates lists unit states, optionally filtered (empty = all).
func (c *Client) UnitStates(ctx context.Context, machineID, unitName string) ([]*UnitState, error) {
	var all []*UnitState
	tok := ""
	for {
		q := url.Values{}
		if tok != "" {
			q.Set("nextPageToken", tok)
		}
		if machineID != "" {
			q.Set("machineID", machineID)
		}
		if unitName != "" {
			q.Set("unitName", unitName)
		}
		var p UnitStatePage
		if _, err := c.do(ctx, http.MethodGet, "/state", q, nil, &p); err != nil {
			return nil, err
		}
		all = append(all, p.States...)
		if p.NextPageToken == "" {
			return all, nil
		}
		tok = p.NextPageToken
	}
}

// Machines lists every machine.
func (c *Client) Machines(ctx context.Context) ([]*Machine, error) {
	var all []*Machine
	tok := ""
	for {
		q := url.Values{}
		if tok != "" {
			q.Set("nextPageToken", tok)
		}
		var p MachinePage
		if _, err := c.do(ctx, http.MethodGet, "/machines", q, nil, &p); err != nil {
			return nil, err
		}
		all = append(all, p.Machines...)
		if p.NextPageToken == "" {
			return all, nil
		}
		tok = p.NextPageToken
	}
}

// PatchMachines applies metadata operations.
func (c *Client) PatchMachines(ctx context.Context, ops []MachineOp) error {
	_, err := c.do(ctx, http.MethodPatch, "/machines", nil, ops, nil)
	return err
}
