package v2http

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/corekit/corekit/etcd/internal/etcdserver"
	"github.com/corekit/corekit/internal/v2api"
)

const membersPrefix = "/v2/members"

// maxMemberBody bounds a members request body; a peer URL list is tiny.
const maxMemberBody = 1 << 20

// membersHandler serves /v2/members, /v2/members/leader and
// /v2/members/<hexid>.
type membersHandler struct {
	srv etcdserver.Server
	log *slog.Logger
}

func (h *membersHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, "GET", "POST", "DELETE", "PUT") {
		return
	}
	setClusterID(w, h.srv.ClusterID())
	sub := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, membersPrefix), "/")
	switch r.Method {
	case http.MethodGet:
		h.get(w, sub)
	case http.MethodPost:
		urls, herr := parsePeerURLsRequest(r)
		if herr != nil {
			writeMessage(w, herr.code, herr.msg)
			return
		}
		m, err := h.srv.AddMember(r.Context(), urls)
		switch {
		case errors.Is(err, etcdserver.ErrIDExists), errors.Is(err, etcdserver.ErrPeerURLExists):
			writeMessage(w, http.StatusConflict, err.Error())
		case err != nil:
			h.internal(w, r, err)
		default:
			writeJSONLine(w, http.StatusCreated, normalMember(m))
		}
	case http.MethodDelete:
		id, ok := memberID(w, sub)
		if !ok {
			return
		}
		err := h.srv.RemoveMember(r.Context(), id)
		switch {
		case errors.Is(err, etcdserver.ErrIDRemoved):
			writeMessage(w, http.StatusGone, "Member permanently removed: "+formatID(id))
		case errors.Is(err, etcdserver.ErrIDNotFound):
			writeMessage(w, http.StatusNotFound, "No such member: "+formatID(id))
		case err != nil:
			h.internal(w, r, err)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	case http.MethodPut:
		id, ok := memberID(w, sub)
		if !ok {
			return
		}
		urls, herr := parsePeerURLsRequest(r)
		if herr != nil {
			writeMessage(w, herr.code, herr.msg)
			return
		}
		err := h.srv.UpdateMember(r.Context(), id, urls)
		switch {
		case errors.Is(err, etcdserver.ErrPeerURLExists):
			writeMessage(w, http.StatusConflict, err.Error())
		case errors.Is(err, etcdserver.ErrIDNotFound):
			writeMessage(w, http.StatusNotFound, "No such member: "+formatID(id))
		case err != nil:
			h.internal(w, r, err)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}
}

func (h *membersHandler) get(w http.ResponseWriter, sub string) {
	switch sub {
	case "":
		ms := sortedMembers(h.srv.Members())
		writeJSONLine(w, http.StatusOK, v2api.MemberList{Members: ms})
	case "leader":
		lead, ok := h.srv.Leader()
		if !ok {
			writeMessage(w, http.StatusServiceUnavailable, "During election")
			return
		}
		for _, m := range h.srv.Members() {
			if id, err := parseID(m.ID); err == nil && id == lead {
				writeJSONLine(w, http.StatusOK, normalMember(m))
				return
			}
		}
		writeMessage(w, http.StatusServiceUnavailable, "During election")
	default:
		writeMessage(w, http.StatusNotFound, "Not found")
	}
}

func (h *membersHandler) internal(w http.ResponseWriter, r *http.Request, err error) {
	h.log.Warn("v2http: members request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
}

// memberID parses the <hexid> of /v2/members/<hexid>. A missing id is 405
// (plain text, no Allow header), an unparsable one 404, as in etcd.
func memberID(w http.ResponseWriter, sub string) (uint64, bool) {
	if sub == "" {
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return 0, false
	}
	id, err := parseID(sub)
	if err != nil {
		writeMessage(w, http.StatusNotFound, "No such member: "+sub)
		return 0, false
	}
	return id, true
}

// normalMember makes slices non-nil so they encode as [] rather than null.
func normalMember(m v2api.Member) v2api.Member {
	if m.PeerURLs == nil {
		m.PeerURLs = []string{}
	}
	if m.ClientURLs == nil {
		m.ClientURLs = []string{}
	}
	return m
}

// sortedMembers returns a copy ordered by numeric member ID, never nil.
func sortedMembers(in []v2api.Member) []v2api.Member {
	out := make([]v2api.Member, 0, len(in))
	for _, m := range in {
		out = append(out, normalMember(m))
	}
	key := func(m v2api.Member) uint64 { id, _ := parseID(m.ID); return id }
	sort.SliceStable(out, func(i, j int) bool { return key(out[i]) < key(out[j]) })
	return out
}

// statusError is a members-API failure: status and {"message"} text.
type statusError struct {
	code int
	msg  string
}

// parsePeerURLsRequest reads {"peerURLs":[…]} from a POST or PUT body.
func parsePeerURLsRequest(r *http.Request) ([]string, *statusError) {
	ct := r.Header.Get("Content-Type")
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = strings.ToLower(strings.TrimSpace(ct[:i]))
	}
	if ct != "application/json" {
		return nil, &statusError{http.StatusUnsupportedMediaType, fmt.Sprintf("Bad Content-Type %s, accept application/json", ct)}
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxMemberBody+1))
	if err != nil {
		return nil, &statusError{http.StatusBadRequest, err.Error()}
	}
	if len(b) > maxMemberBody {
		return nil, &statusError{http.StatusBadRequest, "request body too large"}
	}
	return parsePeerURLs(b)
}

// parsePeerURLs decodes and validates the peer URL list (pure). The result
// is sorted, as etcd stores it.
func parsePeerURLs(body []byte) ([]string, *statusError) {
	var req struct {
		PeerURLs []string `json:"peerURLs"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, &statusError{http.StatusBadRequest, err.Error()}
	}
	if len(req.PeerURLs) == 0 {
		return nil, &statusError{http.StatusBadRequest, "no valid URLs given"}
	}
	out := make([]string, 0, len(req.PeerURLs))
	for _, in := range req.PeerURLs {
		in = strings.TrimSpace(in)
		u, err := url.Parse(in)
		if err != nil {
			return nil, &statusError{http.StatusBadRequest, err.Error()}
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return nil, &statusError{http.StatusBadRequest, "URL scheme must be http or https: " + in}
		}
		if _, _, err := net.SplitHostPort(u.Host); err != nil {
			return nil, &statusError{http.StatusBadRequest, `URL address does not have the form "host:port": ` + in}
		}
		if u.Path != "" {
			return nil, &statusError{http.StatusBadRequest, "URL must not contain a path: " + in}
		}
		out = append(out, u.String())
	}
	sort.Strings(out)
	return out, nil
}
