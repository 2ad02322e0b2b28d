package webui

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/homederp/homederp/appliance/derpmap"
)

// postMultipart submits the map check form as a browser does (multipart,
// as the page's enctype says), with the text box and optionally a file.
func (b *testBox) postMultipart(text, fileName, file string, hdr ...string) (*http.Response, string) {
	b.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("csrf", b.token("/derpmap", "/derpmap/check"))
	mw.WriteField("map", text)
	fw, err := mw.CreateFormFile("mapfile", fileName)
	if err != nil {
		b.t.Fatal(err)
	}
	fw.Write([]byte(file))
	mw.Close()
	return b.postRaw("/derpmap/check", mw.FormDataContentType(), buf.String(), hdr...)
}

// TestMapCheckTakesLargeMaps: a pretty-printed map of a couple of hundred
// KiB is checked, pasted or uploaded; a map over the stated limit gets a
// clear message and keeps what was pasted, as far as the limit.
func TestMapCheckTakesLargeMaps(t *testing.T) {
	b := newBox(t, nil).configured().login()
	_, page := b.get("/derpmap")
	contains(t, "map page", page, `enctype="multipart/form-data"`, "Up to 512 KiB", `type="file"`)

	home, err := derpmap.JSON(b.s.homeMap(b.store.Config(), false))
	if err != nil {
		t.Fatal(err)
	}
	// 200 KiB of indentation, as a generous pretty-printer writes it.
	padded := strings.Replace(string(home), "{\n", "{\n"+strings.Repeat("\n"+strings.Repeat(" ", 31), 200<<10/32), 1)
	if !json.Valid([]byte(padded)) || len(padded) < 200<<10 {
		t.Fatalf("test map: %d bytes, valid %v", len(padded), json.Valid([]byte(padded)))
	}
	resp, body := b.postMultipart(padded, "", "")
	mustStatus(t, "a pasted 200 KiB map", resp, body, http.StatusOK)
	contains(t, "check result", body, `id="report"`, "No errors.")

	resp, body = b.postMultipart("", "derpmap.json", padded)
	mustStatus(t, "an uploaded 200 KiB map", resp, body, http.StatusOK)
	contains(t, "check result", body, "No errors.", "&#34;RegionCode&#34;: &#34;home&#34;") // the file's text is shown

	big := padded + strings.Repeat(" ", 400<<10)
	resp, body = b.postMultipart(big, "", "")
	mustStatus(t, "a 600 KiB map", resp, body, http.StatusBadRequest)
	contains(t, "too large", body, "larger than 512 KiB", "only its beginning is kept", "&#34;Regions&#34;")
	if strings.Contains(body, `id="report"`) {
		t.Error("a map over the limit was checked anyway")
	}
}
