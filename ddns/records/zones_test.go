package records

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestZoneFinder(t *testing.T) {
	ctx := context.Background()
	t.Run("list: the longest zone holding the name", func(t *testing.T) {
		lists, details := 0, []string{}
		f := &ZoneFinder{Vendor: "Example",
			List: func(context.Context) ([]string, error) {
				lists++
				return []string{"example.com", "home.example.com", "ample.com", "example.org"}, nil
			},
			Detail: func(_ context.Context, name string) (Zone, error) {
				details = append(details, name)
				return Zone{Name: name}, nil
			}}
		for _, host := range []string{"derp.home.example.com", "DERP.home.example.com.", "home.example.com"} {
			if z, err := f.Find(ctx, host); err != nil || z.Name != "home.example.com" {
				t.Errorf("Find(%q): got %q, %v; want home.example.com", host, z.Name, err)
			}
		}
		if z, err := f.Find(ctx, "www.example.com"); err != nil || z.Name != "example.com" {
			t.Errorf("Find(www.example.com): got %q, %v", z.Name, err)
		}
		if lists != 2 || !slices.Equal(details, []string{"home.example.com", "example.com"}) {
			t.Errorf("calls: %d lists, details %q; want 2 and each zone once (cached)", lists, details)
		}
		var nz *NoZoneError
		if _, err := f.Find(ctx, "derp.example.net"); !errors.As(err, &nz) || !strings.Contains(err.Error(), "derp.example.net") {
			t.Errorf("Find(derp.example.net): got %v, want a NoZoneError", err)
		}
	})
	t.Run("lookup: parents longest first, an error stops", func(t *testing.T) {
		var asked []string
		f := &ZoneFinder{Vendor: "Example", Lookup: func(_ context.Context, name string) (Zone, bool, error) {
			asked = append(asked, name)
			if name == "home.example.com" {
				return Zone{}, false, errors.New("throttled")
			}
			return Zone{Name: name}, name == "example.com", nil
		}}
		if z, err := f.Find(ctx, "derp.example.com"); err != nil || z.Name != "example.com" {
			t.Errorf("Find: got %q, %v", z.Name, err)
		}
		if _, err := f.Find(ctx, "derp.home.example.com"); err == nil || err.Error() != "throttled" {
			t.Errorf("Find through a failing lookup: got %v", err)
		}
		if want := []string{"derp.example.com", "example.com", "derp.home.example.com", "home.example.com"}; !slices.Equal(asked, want) {
			t.Errorf("asked %q, want %q", asked, want)
		}
	})
}
