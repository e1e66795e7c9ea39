package handler

import (
	"html/template"
	"io"
	"net/http"
	"strings"
	"time"
)

// pageTmpl is the HTML view of a token, for people who open the token URL in
// a browser. html/template escapes every value (member values are whatever
// the members registered).
var pageTmpl = template.Must(template.New("token").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>discovery token {{.Token}}</title></head>
<body>
<h1>Discovery token {{.Token}}</h1>
<table>
<tr><th>Size</th><td>{{if .Size}}{{.Size}}{{else}}not set{{end}}</td></tr>
<tr><th>Registered</th><td>{{len .Members}}</td></tr>
<tr><th>State</th><td>{{if .Sealed}}sealed: all members registered{{else}}waiting for members{{end}}</td></tr>
<tr><th>Created</th><td>{{if .Created}}{{.Created}}{{else}}unknown{{end}}</td></tr>
<tr><th>Expires</th><td>{{if .Expires}}{{.Expires}}{{else}}unknown{{end}}</td></tr>
</table>
<h2>Members</h2>
{{if .Members}}<table>
<tr><th>ID</th><th>Peers</th><th>Index</th></tr>
{{range .Members}}<tr><td>{{.ID}}</td><td>{{.Value}}</td><td>{{.Index}}</td></tr>
{{end}}</table>{{else}}<p>No member has registered yet.</p>{{end}}
</body>
</html>
`))

type pageData struct {
	Token            string
	Size             int
	Sealed           bool
	Created, Expires string
	Members          []pageMember
}

type pageMember struct {
	ID, Value string
	Index     uint64
}

// servePage renders the token's HTML view.
func (h *Handler) servePage(w http.ResponseWriter, r *http.Request, tok string, meta tokenMeta) {
	ns, err := h.members(r.Context(), tok)
	if err != nil {
		h.storeFailed(w, err)
		return
	}
	d := pageData{Token: tok, Size: meta.size, Sealed: meta.size > 0 && len(ns) >= meta.size}
	if !meta.created.IsZero() {
		d.Created = meta.created.UTC().Format(time.RFC3339)
		d.Expires = meta.created.Add(h.cfg.TokenTTL).UTC().Format(time.RFC3339)
	}
	for _, n := range ns {
		d.Members = append(d.Members, pageMember{
			ID:    n.Key[strings.LastIndex(n.Key, "/")+1:],
			Value: n.StringValue(),
			Index: n.CreatedIndex,
		})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := renderPage(w, d); err != nil {
		h.log.Warn("render token page", "err", err)
	}
}

// renderPage writes the HTML view of d. It is pure (golden-tested).
func renderPage(w io.Writer, d pageData) error { return pageTmpl.Execute(w, d) }
