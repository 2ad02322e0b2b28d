package derpmap

import (
	"reflect"
	"strings"
	"testing"

	"tailscale.com/tailcfg"
)

func checkHome() *tailcfg.DERPRegion {
	return Region(testConfig(), Options{PinnedCert: []byte("cert")})
}

// TestCheckAcceptsWhatTheBoxEmits: every form the web UI hands out must
// pass the checker without an error or a warning.
func TestCheckAcceptsWhatTheBoxEmits(t *testing.T) {
	m := Map(testConfig(), Options{PinnedCert: []byte("cert")})
	j, _ := JSON(m)
	y, _ := YAML(m)
	p, _ := PolicyBlock(m)
	for name, in := range map[string][]byte{"json": j, "yaml": y, "policy block": p} {
		rep := Check(in, checkHome())
		for _, f := range rep.Findings {
			if f.Severity != SevNote {
				t.Errorf("%s: unexpected %s: %s", name, f.Severity, f.Msg)
			}
		}
		if len(rep.Regions) != 1 || rep.Regions[0] != 900 {
			t.Errorf("%s: regions %v, want [900]", name, rep.Regions)
		}
	}
}

func TestCheck(t *testing.T) {
	pin := checkHome().Nodes[0].CertName
	node := func(extra string) string {
		return `{"Name":"900a","RegionID":900,"HostName":"derp.example.com","DERPPort":12345,"STUNPort":3478,"CertName":"` + pin + `"` + extra + `}`
	}
	region := func(nodes string) string {
		return `{"Regions":{"900":{"RegionID":900,"RegionCode":"home","RegionName":"Home","Nodes":[` + nodes + `]}}}`
	}
	for _, tt := range []struct {
		name   string
		in     string
		format string   // substring of Report.Format; "" skips
		sev    Severity // the finding wanted
		msg    string   // substring of its message
	}{
		{"empty", "  \n", "", SevError, "nothing to check"},
		{"not JSON", `{"Regions": {`, "JSON", SevError, "not valid JSON"},
		{"not YAML", "regions: [\n  - : :\n", "YAML", SevError, "neither JSON nor valid YAML"},
		{"no regions", `{"Regions":{}}`, "JSON", SevError, "no regions"},
		{"node without RegionID", region(`{"Name":"900a","HostName":"derp.example.com","DERPPort":12345,"CertName":"` + pin + `"}`), "", SevError, "has no RegionID"},
		{"node in the wrong region", region(strings.Replace(node(""), `"RegionID":900`, `"RegionID":901`, 1)), "", SevError, "says RegionID 901 but sits in region 900"},
		{"region key vs RegionID", `{"Regions":{"901":{"RegionID":900,"RegionCode":"x","RegionName":"X","Nodes":[{"Name":"a","RegionID":901,"HostName":"other.example"}]}}}`, "", SevError, "Region 901 says RegionID 900"},
		{"DERP port missing", region(strings.Replace(node(""), `"DERPPort":12345,`, "", 1)), "", SevError, "says DERP port 443 (the default when the field is missing), but this box serves DERP on port 12345"},
		{"DERP port drift", region(strings.Replace(node(""), `12345`, `12346`, 1)), "", SevError, "DERP port 12346"},
		{"STUN port drift", region(strings.Replace(node(""), `3478`, `3479`, 1)), "", SevError, "STUN port 3479"},
		{"STUN off", region(strings.Replace(node(""), `3478`, `-1`, 1)), "", SevWarning, "turns STUN off"},
		{"no pin", region(strings.Replace(node(""), `,"CertName":"`+pin+`"`, "", 1)), "", SevError, "clients will refuse it"},
		{"old pin", region(strings.Replace(node(""), pin, "sha256-raw:00", 1)), "", SevError, "pins a different certificate"},
		{"malformed pin", region(strings.Replace(node(""), pin, "sha256-raw:00", 1)), "", SevError, "is not sha256-raw: followed by 64 hex digits"},
		{"uppercase pin spelled out", region(strings.Replace(node(""), pin, "sha256-raw:"+strings.ToUpper(strings.TrimPrefix(pin, "sha256-raw:")), 1)), "", SevError, "uppercase hex digits"},
		{"fixed IPv4", region(node(`,"IPv4":"198.51.100.7"`)), "", SevWarning, "fixed IPv4 address (198.51.100.7)"},
		{"insecure", region(node(`,"InsecureForTests":true`)), "", SevWarning, "InsecureForTests"},
		{"region collision", `{"Regions":{"900":{"RegionID":900,"RegionCode":"x","RegionName":"X","Nodes":[{"Name":"x1","RegionID":900,"HostName":"other.example"}]}}}`, "", SevError, "belongs to other servers (other.example)"},
		{"headscale embedded region", `{"Regions":{"999":{"RegionID":999,"RegionCode":"hs","RegionName":"HS","Nodes":[{"Name":"x1","RegionID":999,"HostName":"other.example"}]}}}`, "", SevWarning, "headscale's embedded DERP"},
		{"box missing", `{"Regions":{"950":{"RegionID":950,"RegionCode":"x","RegionName":"X","Nodes":[{"Name":"x1","RegionID":950,"HostName":"other.example"}]}}}`, "", SevNote, "does not include this box"},
		{"duplicate node names", `{"Regions":{"950":{"RegionID":950,"RegionCode":"x","RegionName":"X","Nodes":[{"Name":"n","RegionID":950,"HostName":"a.example"},{"Name":"n","RegionID":950,"HostName":"b.example"}]}}}`, "", SevError, "used twice"},
		{"duplicate JSON key", `{"Regions":{"950":{"RegionID":950,"RegionCode":"x","RegionName":"X","Nodes":[{"Name":"n","RegionID":950,"HostName":"a.example"}]},"950":null}}`, "", SevError, "appears twice"},
		{"unknown JSON key", region(node(`,"DERPPorts":1`)), "", SevWarning, `"DERPPorts" is not a field of a DERP node`},
		{"region not a number", `{"Regions":{"home":{"RegionID":900}}}`, "", SevError, "not a region ID"},
		{"outside custom range", `{"Regions":{"5":{"RegionID":5,"RegionCode":"x","RegionName":"X","Nodes":[{"Name":"n","RegionID":5,"HostName":"a.example"}]}}}`, "", SevWarning, "outside 900–999"},
		{"null removes a Tailscale region", `{"Regions":{"1":null}}`, "", SevNote, "removes Tailscale's region 1"},
		{"JSON as derp.paths", region(node("")), "JSON", SevNote, "Do not use it as a headscale derp.paths file"},
		{"HuJSON policy file", "{\n // my tailnet\n \"acls\": [],\n \"derpMap\": " + region(node("")) + ",\n}", "policy file", SevNote, "derp.paths"},
		{"policy file without derpMap", `{"acls": []}`, "", SevError, `no "derpMap" section`},
		{"policy member pasted", `"derpMap": ` + region(strings.Replace(node(""), `12345`, `1`, 1)) + `,`, "policy file", SevError, "DERP port 1,"},
		{"capitalised YAML", "regions:\n  900:\n    regionid: 900\n    regioncode: home\n    regionname: Home\n    nodes:\n      - name: 900a\n        RegionID: 900\n        hostname: derp.example.com\n        derpport: 12345\n        certname: " + pin + "\n",
			"YAML", SevError, `Line 8: headscale ignores the key "RegionID", because it only reads lowercase keys: write "regionid"`},
		{"YAML node without regionid", "regions:\n  900:\n    regionid: 900\n    regioncode: home\n    regionname: Home\n    nodes:\n      - name: 900a\n        hostname: derp.example.com\n        derpport: 12345\n        certname: " + pin + "\n",
			"YAML", SevError, "has no RegionID"},
		{"YAML port drift", "regions:\n  900:\n    regionid: 900\n    regioncode: home\n    regionname: Home\n    nodes:\n      - name: 900a\n        regionid: 900\n        hostname: derp.example.com\n        certname: " + pin + "\n",
			"YAML", SevError, "DERP port 443"},
		{"YAML duplicate", "regions:\n  900:\n    regionid: 900\n  900:\n    regionid: 900\n", "YAML", SevError, "could not read"},
		{"headscale config pasted", "server_url: https://hs.example.com\nderp:\n  paths: [/etc/headscale/derp.yaml]\n", "YAML", SevError, "headscale's config.yaml"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rep := Check([]byte(tt.in), checkHome())
			if tt.format != "" && !strings.Contains(rep.Format, tt.format) {
				t.Errorf("Format: got %q, want it to mention %q", rep.Format, tt.format)
			}
			for _, f := range rep.Findings {
				if f.Severity == tt.sev && strings.Contains(f.Msg, tt.msg) {
					return
				}
			}
			t.Errorf("Check(%s): got findings\n%s\nwant a %s containing %q", tt.in, dump(rep.Findings), tt.sev, tt.msg)
		})
	}
}

// TestCheckReportsEveryKeyAtOnce: a YAML file written with JSON's
// capitalised keys gets one finding per key, at every level, so the user
// fixes them in one round rather than one level per check.
func TestCheckReportsEveryKeyAtOnce(t *testing.T) {
	in := "Regions:\n  900:\n    RegionID: 900\n    regioncode: home\n    Nodes:\n      - Name: 900a\n        HostName: derp.example.com\n"
	rep := Check([]byte(in), checkHome())
	for _, want := range []string{`Line 1: headscale ignores the key "Regions"`, `Line 3: headscale ignores the key "RegionID"`,
		`Line 5: headscale ignores the key "Nodes"`, `Line 6: headscale ignores the key "Name"`, `Line 7: headscale ignores the key "HostName"`} {
		found := false
		for _, f := range rep.Findings {
			found = found || f.Severity == SevError && strings.Contains(f.Msg, want)
		}
		if !found {
			t.Errorf("Check: lacks an error containing %q; got\n%s", want, dump(rep.Findings))
		}
	}
}

func TestCheckOrdersErrorsFirst(t *testing.T) {
	rep := Check([]byte(`{"Regions":{"999":{"RegionID":999,"Nodes":[{"Name":"n","HostName":"a.example"}]}}}`), checkHome())
	if rep.OK() {
		t.Fatal("OK: got true for a node without RegionID")
	}
	last := SevError
	for _, f := range rep.Findings {
		if f.Severity == SevError && last != SevError {
			t.Errorf("an error follows a %s:\n%s", last, dump(rep.Findings))
		}
		last = f.Severity
	}
}

func TestRegionIDFindings(t *testing.T) {
	for _, tt := range []struct {
		id   int
		want Severity
	}{{999, SevWarning}, {900, SevNote}, {942, ""}} {
		fs := RegionIDFindings(tt.id)
		var got Severity
		if len(fs) > 0 {
			got = fs[0].Severity
		}
		if got != tt.want {
			t.Errorf("RegionIDFindings(%d): got %q, want %q", tt.id, got, tt.want)
		}
	}
}

func dump(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString("  " + string(f.Severity) + ": " + f.Msg + "\n")
	}
	return b.String()
}

func FuzzCheck(f *testing.F) {
	m := Map(testConfig(), Options{PinnedCert: []byte("cert")})
	j, _ := JSON(m)
	y, _ := YAML(m)
	f.Add(j)
	f.Add(y)
	f.Add([]byte(`"derpMap": {"Regions": {"1": null}},`))
	p, _ := PolicyBlock(m)
	f.Add(p)
	// Whatever is pasted, the checker must not panic, must say
	// something about input it does not accept, must put errors first,
	// and must say the same thing each time (the page would otherwise
	// reorder its findings on a reload).
	f.Fuzz(func(t *testing.T, in []byte) {
		rep := Check(in, checkHome())
		rank := map[Severity]int{SevError: 0, SevWarning: 1, SevNote: 2}
		for i, fd := range rep.Findings {
			if _, ok := rank[fd.Severity]; !ok || strings.TrimSpace(fd.Msg) == "" {
				t.Fatalf("finding %d: %+v; want a known severity and a message", i, fd)
			}
			if i > 0 && rank[rep.Findings[i-1].Severity] > rank[fd.Severity] {
				t.Fatalf("findings out of order: %s after %s", fd.Severity, rep.Findings[i-1].Severity)
			}
		}
		if !rep.OK() && len(rep.Findings) == 0 {
			t.Fatal("not OK, but no finding says why")
		}
		if again := Check(in, checkHome()); !reflect.DeepEqual(rep, again) {
			t.Fatalf("Check is not deterministic:\n%+v\n%+v", rep, again)
		}
	})
}

func BenchmarkCheck(b *testing.B) {
	m := Map(testConfig(), Options{PinnedCert: []byte("cert")})
	j, _ := JSON(m)
	y, _ := YAML(m)
	for name, in := range map[string][]byte{"json": j, "yaml": y} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if rep := Check(in, checkHome()); !rep.OK() {
					b.Fatal(rep.Findings)
				}
			}
		})
	}
}

func BenchmarkYAML(b *testing.B) {
	m := Map(testConfig(), Options{PinnedCert: []byte("cert")})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := YAML(m); err != nil {
			b.Fatal(err)
		}
	}
}
