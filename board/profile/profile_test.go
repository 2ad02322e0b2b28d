package profile

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/homederp/homederp/board/gokrazyconfig"
	"github.com/homederp/homederp/internal/testenv"
)

func configDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(filepath.Dir(strings.TrimSpace(string(out))), "gokrazy-config")
}

// want is what each board's config.json must say about the hardware.
var want = map[string]struct {
	goarch, kernel, firmware, eeprom, serial string
}{
	"amd64":     {"amd64", "github.com/gokrazy/kernel.amd64", "", "", "ttyS0,115200"},
	"arm64":     {"arm64", "github.com/gokrazy/kernel.arm64", "", "", "ttyAMA0,115200"},
	"rpi3":      {"arm64", "github.com/gokrazy/kernel.rpi", "github.com/gokrazy/firmware", "", "serial0,115200"},
	"rpi4":      {"arm64", "github.com/gokrazy/kernel.rpi", "github.com/gokrazy/firmware", "github.com/gokrazy/rpi-eeprom", "serial0,115200"},
	"rpi5":      {"arm64", "github.com/gokrazy/kernel.rpi", "github.com/gokrazy/firmware", "", "serial0,115200"},
	"rpizero2w": {"arm64", "github.com/gokrazy/kernel.rpi", "github.com/gokrazy/firmware", "", "serial0,115200"},
}

// TestInstances loads every board's config.json and checks the hardware
// settings and that the settings every board shares are identical, so an
// edit in one instance is not forgotten in the others.
func TestInstances(t *testing.T) {
	dir := configDir(t)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var instances []string
	for _, e := range entries {
		if e.IsDir() {
			instances = append(instances, e.Name())
		}
	}
	if got, want := instances, Names(); !reflect.DeepEqual(got, want) {
		t.Errorf("instances in gokrazy-config: got %v, want one per board %v", got, want)
	}
	var first *gokrazyconfig.Config
	for _, p := range Profiles {
		c, err := p.Load(dir)
		if err != nil {
			t.Errorf("%s: %v", p.Name, err)
			continue
		}
		w := want[p.Name]
		got := [5]string{c.GOARCH(), c.KernelPackageOrDefault(), c.FirmwarePackageOrDefault(), c.EEPROMPackageOrDefault(), c.SerialConsoleOrDefault()}
		if got != [5]string{w.goarch, w.kernel, w.firmware, w.eeprom, w.serial} {
			t.Errorf("%s: GOARCH, kernel, firmware, EEPROM, serial console: got %q, want %v", p.Name, got, w)
		}
		if c.HTTPPort() != "8080" {
			t.Errorf("%s: gokrazy's web interface on port %s; the web UI needs 80 (Update.HTTPPort must be 8080)", p.Name, c.HTTPPort())
		}
		if c.Update != nil && c.Update.HTTPPassword != "" {
			t.Errorf("%s: a password in the repository", p.Name)
		}
		if first == nil {
			first = c
			continue
		}
		for _, f := range []struct {
			name      string
			got, want any
		}{
			{"Hostname", c.Hostname, first.Hostname},
			{"Update", c.Update, first.Update},
			{"Packages", c.Packages, first.Packages},
			{"PackageConfig", c.PackageConfig, first.PackageConfig},
			{"GokrazyPackages", c.GokrazyPackagesOrDefault(), first.GokrazyPackagesOrDefault()},
		} {
			if !reflect.DeepEqual(f.got, f.want) {
				t.Errorf("%s: %s differs from %s's: %v vs %v", p.Name, f.name, Profiles[0].Name, f.got, f.want)
			}
		}
	}
	if first == nil {
		return
	}
	if got := first.Packages; !reflect.DeepEqual(got, []string{"github.com/homederp/homederp/appliance", "tailscale.com/cmd/tailscaled"}) {
		t.Errorf("Packages: got %v", got)
	}
	ts := first.PackageConfig["tailscale.com/cmd/tailscaled"]
	for _, flag := range []string{"--statedir=/perm/tailscaled", "--tun=userspace-networking"} {
		if !contains(ts.CommandLineFlags, flag) {
			t.Errorf("tailscaled flags %v lack %s", ts.CommandLineFlags, flag)
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestBuilddirPins checks that the go.mod files gok builds with
// (gokrazy-config/<board>/builddir/go.mod) pin the same versions as this
// module's go.mod, so gok and board build the same programs and kernel.
func TestBuilddirPins(t *testing.T) {
	dir := configDir(t)
	root := filepath.Dir(dir)
	versions := map[string]string{}
	for _, m := range []string{"tailscale.com", "github.com/gokrazy/gokrazy", "github.com/gokrazy/kernel.amd64", "github.com/gokrazy/kernel.arm64", "github.com/gokrazy/kernel.rpi", "github.com/gokrazy/firmware", "github.com/gokrazy/rpi-eeprom"} {
		cmd := exec.Command("go", "list", "-m", "-f", "{{.Version}}", m)
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -m %s: %v", m, err)
		}
		versions[m] = strings.TrimSpace(string(out))
	}
	for _, p := range Profiles {
		b, err := os.ReadFile(filepath.Join(dir, p.Name, "builddir", "go.mod"))
		if err != nil {
			t.Errorf("%s: %v", p.Name, err)
			continue
		}
		mod := string(b)
		c, err := p.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		need := []string{"tailscale.com", "github.com/gokrazy/gokrazy", c.KernelPackageOrDefault()}
		for _, m := range []string{c.FirmwarePackageOrDefault(), c.EEPROMPackageOrDefault()} {
			if m != "" {
				need = append(need, m)
			}
		}
		for _, m := range need {
			if line := "\t" + m + " " + versions[m] + "\n"; !strings.Contains(mod, line) {
				t.Errorf("%s/builddir/go.mod: want %q (as in go.mod)", p.Name, strings.TrimSpace(line))
			}
		}
		if !strings.Contains(mod, "replace github.com/homederp/homederp => ../../..\n") {
			t.Errorf("%s/builddir/go.mod: want the appliance built from this checkout (replace github.com/homederp/homederp => ../../..)", p.Name)
		}
	}
}

func TestLookup(t *testing.T) {
	if _, err := Lookup("rpi4"); err != nil {
		t.Error(err)
	}
	if _, err := Lookup("pi4"); err == nil || !strings.Contains(err.Error(), "rpi4") {
		t.Errorf("Lookup(pi4): got %v, want an error listing the boards", err)
	}
}

// TestBuilddirResolves does what gok does with an instance's builddir
// go.mod (go list -mod=mod of the packages, in a copy of builddir whose
// replace points at this checkout) and checks that tailscaled resolves to
// the pinned tailscale.com.
func TestBuilddirResolves(t *testing.T) {
	testenv.NeedLong(t)
	dir := configDir(t)
	root := filepath.Dir(dir)
	for _, board := range []string{"amd64", "rpi4"} {
		p, _ := Lookup(board)
		c, err := p.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, board, "builddir", "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		tmp := t.TempDir()
		mod := strings.Replace(string(b), "=> ../../..", "=> "+root, 1)
		sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(tmp, "go.mod"), []byte(mod), 0644)
		os.WriteFile(filepath.Join(tmp, "go.sum"), sum, 0644)
		pkgs := append(append(append([]string(nil), c.Packages...), c.GokrazyPackagesOrDefault()...), c.KernelPackageOrDefault())
		goCmd := func(args ...string) string {
			cmd := exec.Command("go", args...)
			cmd.Dir = tmp
			cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOOS=linux", "GOARCH="+c.GOARCH(), "CGO_ENABLED=0", "GOWORK=off")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: go %s: %v\n%s", board, strings.Join(args, " "), err, out)
			}
			return strings.TrimSpace(string(out))
		}
		goCmd(append([]string{"list", "-tags", "gokrazy", "-e", "-f", "{{.ImportPath}} {{if .Error}}{{.Error}}{{end}}"}, pkgs...)...)
		out := goCmd(append([]string{"list", "-tags", "gokrazy", "-f", "{{.ImportPath}} {{.Name}}"}, pkgs[:len(pkgs)-1]...)...)
		for _, line := range strings.Split(out, "\n") {
			if !strings.HasSuffix(line, " main") {
				t.Errorf("%s: with builddir/go.mod, %q is not a main package", board, line)
			}
		}
		if got := goCmd("list", "-m", "-f", "{{.Version}}", "tailscale.com"); got != "v1.102.5" {
			t.Errorf("%s: with builddir/go.mod, tailscale.com resolves to %s, want v1.102.5", board, got)
		}
	}
}
