package webui

import (
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/homederp/homederp/appliance/config"
	"github.com/homederp/homederp/appliance/derpmap"
	"tailscale.com/tailcfg"
)

// The DERP map page shows the box's map, always rendered from the
// running configuration and the certificate being served, in the forms
// people paste: a Tailscale policy file's "derpMap" block, headscale's
// derp.urls (the relay's public /derpmap.json) and headscale's derp.paths
// (lowercase YAML). Each has a copy button and a download link. Below,
// a checker reads a map the user pastes (or uploads as a file) and says
// everything that is wrong with it at once.

// maxMap is the largest map the checker reads, pasted or uploaded. The
// form is sent as multipart, so this counts the map itself, not its
// URL encoding; a pretty-printed map of many regions is a few hundred KiB
// at most.
const maxMap = 512 << 10

// mapView is the DERP map page.
type mapView struct {
	Configured bool   `json:"configured"`
	Hostname   string `json:"hostname"`
	Omit       bool   `json:"omit_default_regions"`
	Policy     string `json:"policy_block"`    // Tailscale policy file
	JSON       string `json:"json"`            // the map as /derpmap.json serves it
	YAML       string `json:"yaml"`            // headscale derp.paths
	URL        string `json:"url"`             // for headscale derp.urls
	URLTrusted bool   `json:"url_trusted"`     // headscale can fetch URL (trusted certificate)
	Pinned     bool   `json:"pinned"`          // the map pins a self-signed certificate
	Insecure   bool   `json:"insecure"`        // the map says InsecureForTests
	Proxy      string `json:"reverse_proxy"`   // e.g. "derp.example.com:443" behind a reverse proxy, else ""
	HSURLs     string `json:"headscale_urls"`  // config.yaml snippet for derp.urls
	HSPaths    string `json:"headscale_paths"` // config.yaml snippet for derp.paths
	OmitQuery  string `json:"-"`               // "?omit=1" or ""

	PeerRelay peerRelayView `json:"peer_relay"` // the other relay the box offers, and its grant

	Check      *derpmap.Report `json:"check,omitempty"`
	CheckInput string          `json:"-"`
	CheckError string          `json:"check_error,omitempty"` // why the map was not checked
	MaxMap     int             `json:"-"`                     // bytes the checker reads
	MaxMapText string          `json:"-"`                     // e.g. "512 KiB"
	Resumed    bool            `json:"-"`                     // CheckInput is a draft from before a login
}

// headscalePath is where the derp.paths snippet says to put the file.
const headscalePath = "/etc/headscale/derp-homederp.yaml"

// homeMap renders the running map; omit sets OmitDefaultRegions.
func (s *Server) homeMap(c config.Config, omit bool) *tailcfg.DERPMap {
	var o derpmap.Options
	if s.o.MapOptions != nil {
		o = s.o.MapOptions()
	}
	o.OmitDefaultRegions = omit
	return derpmap.Map(c, o)
}

func (s *Server) mapView(r *http.Request) (mapView, error) {
	t := s.tr(r)
	c := s.o.Store.Config()
	omit := r.FormValue("omit") == "1"
	v := mapView{Configured: c.Hostname != "", Hostname: c.Hostname, Omit: omit, MaxMap: maxMap, MaxMapText: fmt.Sprintf("%d KiB", maxMap>>10)}
	if omit {
		v.OmitQuery = "?omit=1"
	}
	v.PeerRelay = s.peerRelayState(r.Context(), t, c)
	if !v.Configured {
		return v, nil
	}
	m := s.homeMap(c, omit)
	pol, err := derpmap.PolicyBlock(m)
	if err != nil {
		return v, err
	}
	j, err := derpmap.JSON(m)
	if err != nil {
		return v, err
	}
	y, err := derpmap.YAML(m)
	if err != nil {
		return v, err
	}
	v.Policy, v.JSON, v.YAML = string(pol), string(j), string(y)
	v.URL = derpmap.PublicURL(c)
	n := m.Regions[c.Region.ID].Nodes[0]
	v.Pinned, v.Insecure = n.CertName != "", n.InsecureForTests
	v.URLTrusted = !v.Pinned && !v.Insecure
	if c.ReverseProxy.Enabled {
		v.Proxy = net.JoinHostPort(c.DialHost(), strconv.Itoa(c.DialPort()))
	}
	v.HSURLs = derpmap.HeadscaleURLs(v.URL, !omit)
	v.HSPaths = derpmap.HeadscalePaths(headscalePath, !omit)
	return v, nil
}

func (s *Server) mapPage(w http.ResponseWriter, r *http.Request, u *user) {
	t := s.tr(r)
	v, err := s.mapView(r)
	if err != nil {
		s.o.Logf("webui: rendering the DERP map: %v", err)
		http.Error(w, t.S("http.map_failed"), http.StatusInternalServerError)
		return
	}
	if d := s.sessions.takeDraft(u.session, "/derpmap"); d != nil {
		v.CheckInput, v.Resumed = d.Values.Get("map"), true
	}
	s.render(w, r, http.StatusOK, "derpmap", s.newPage(u, t.S("nav.derpmap"), "derpmap", v))
}

// mapDownload serves one form of the map as a file.
func (s *Server) mapDownload(w http.ResponseWriter, r *http.Request, u *user) {
	c := s.o.Store.Config()
	if c.Hostname == "" {
		http.Error(w, s.tr(r).S("http.no_map"), http.StatusConflict)
		return
	}
	m := s.homeMap(c, r.FormValue("omit") == "1")
	var (
		b     []byte
		err   error
		ctype string
	)
	name := path.Base(r.URL.Path)
	switch name {
	case "derpmap.json":
		b, err = derpmap.JSON(m)
		ctype = "application/json"
	case "derpmap.yaml":
		b, err = derpmap.YAML(m)
		ctype = "application/yaml"
	case "policy.hujson":
		b, err = derpmap.PolicyBlock(m)
		ctype = "text/plain; charset=utf-8"
	}
	if err != nil || b == nil {
		s.o.Logf("webui: rendering %s: %v", name, err)
		http.Error(w, s.tr(r).S("http.map_failed"), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", `attachment; filename="homederp-`+name+`"`)
	w.Write(b)
}

// mapCheck checks a pasted or uploaded map. It changes nothing, so it
// answers the POST with the result directly instead of redirecting; the
// map stays in the text box either way.
func (s *Server) mapCheck(w http.ResponseWriter, r *http.Request, u *user) {
	t := s.tr(r)
	v, err := s.mapView(r)
	if err != nil {
		s.o.Logf("webui: rendering the DERP map: %v", err)
	}
	in, problem := pastedMap(t, r)
	v.CheckInput = in
	if problem != "" {
		v.CheckError = problem
		if wantsJSON(r) {
			writeJSON(w, http.StatusBadRequest, messageView{v.CheckError})
			return
		}
		s.render(w, r, http.StatusBadRequest, "derpmap", s.newPage(u, t.S("nav.derpmap"), "derpmap", v))
		return
	}
	c := s.o.Store.Config()
	var home *tailcfg.DERPRegion
	if c.Hostname != "" {
		home = s.homeMap(c, false).Regions[c.Region.ID]
	}
	rep := derpmap.Check([]byte(in), home)
	rep.Findings = t.findings(rep.Findings)
	v.Check = &rep
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, rep)
		return
	}
	s.render(w, r, http.StatusOK, "derpmap", s.newPage(u, t.S("nav.derpmap"), "derpmap", v))
}

// pastedMap returns the map of the check form: the uploaded file if there
// is one, else the text box. A map over maxMap comes with a problem for
// the user, and as much of it as the text box keeps.
func pastedMap(t *tr, r *http.Request) (in, problem string) {
	in = r.PostForm.Get("map")
	if r.MultipartForm != nil {
		if fhs := r.MultipartForm.File["mapfile"]; len(fhs) > 0 && fhs[0].Size > 0 {
			b, err := readUpload(fhs[0])
			if err != nil {
				return in, t.S("map.check.upload_unreadable", "Err", err.Error())
			}
			in = string(b)
		}
	}
	if len(in) > maxMap {
		return strings.ToValidUTF8(in[:maxMap], ""), t.S("map.check.too_large", "KiB", maxMap>>10)
	}
	return in, ""
}

func readUpload(fh *multipart.FileHeader) ([]byte, error) {
	f, err := fh.Open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxMap+1))
}
