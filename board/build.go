package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/homederp/homederp/board/disk"
	"github.com/homederp/homederp/board/gokrazyconfig"
	"github.com/homederp/homederp/board/image"
	"github.com/homederp/homederp/board/profile"
)

// buildFlags are the flags of every command that builds an image.
type buildFlags struct {
	board        string
	configDir    string
	timestamp    string
	efiDir       string
	passwordFile string
	fetchEFI     bool
}

func (f *buildFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.board, "board", "", "The board to build for: one of "+strings.Join(profile.Names(), ", ")+" (see board boards).")
	fs.StringVar(&f.configDir, "config-dir", "", "The directory of gokrazy instances, one per board. Defaults to gokrazy-config in this module.")
	fs.StringVar(&f.timestamp, "timestamp", "", "The build timestamp, RFC 3339 or Unix seconds. Defaults to $SOURCE_DATE_EPOCH, else now. The same inputs and timestamp give the same image bytes.")
	fs.StringVar(&f.efiDir, "efi-dir", "", "A directory holding systemd-bootx64.efi or systemd-bootaa64.efi, searched before Debian's systemd-boot-efi locations.")
	fs.StringVar(&f.passwordFile, "password-file", "", "A file holding the password for gokrazy's web interface and updates. Defaults to gok's: Update.HTTPPassword in config.json, else ~/.config/gokrazy/hosts/<hostname>/http-password.txt, else ~/.config/gokrazy/http-password.txt (created with a random password if missing).")
	fs.BoolVar(&f.fetchEFI, "fetch-efi", true, "Download Debian's systemd-boot-efi for the target architecture with apt-get if it is not installed (needs dpkg --add-architecture for a foreign architecture).")
}

// built is an image built into a temporary directory.
type built struct {
	*image.Result
	profile  profile.Profile
	cfg      *gokrazyconfig.Config
	password string
	cleanup  func()
}

func (f *buildFlags) build(ctx context.Context) (*built, error) {
	if f.board == "" {
		return nil, fmt.Errorf("-board is required: one of %s", strings.Join(profile.Names(), ", "))
	}
	p, err := profile.Lookup(f.board)
	if err != nil {
		return nil, err
	}
	moduleDir, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	configDir := f.configDir
	if configDir == "" {
		configDir = filepath.Join(moduleDir, "gokrazy-config")
	}
	cfg, err := p.Load(configDir)
	if err != nil {
		return nil, err
	}
	ts, err := parseTimestamp(f.timestamp)
	if err != nil {
		return nil, err
	}
	var pw, pwSource string
	if cfg.Update == nil || !cfg.Update.NoPassword {
		pw, pwSource, err = httpPassword(cfg, f.passwordFile)
		if err != nil {
			return nil, err
		}
	}
	work, err := os.MkdirTemp("", "hd-board-build-")
	if err != nil {
		return nil, err
	}
	cleanup := func() { os.RemoveAll(work) }
	configName := p.ConfigPath(configDir)
	if rel, err := filepath.Rel(moduleDir, configName); err == nil && !strings.HasPrefix(rel, "..") {
		configName = rel
	}
	start := time.Now()
	res, err := image.Build(ctx, image.Options{
		Config:       cfg,
		Pi:           p.Pi,
		ConfigName:   configName,
		ModuleDir:    moduleDir,
		WorkDir:      work,
		Timestamp:    ts,
		HTTPPassword: pw,
		EFIDir:       f.efiDir,
		FetchEFI:     f.fetchEFI,
		Logf:         log.Printf,
	})
	if err != nil {
		cleanup()
		return nil, err
	}
	log.Printf("built %s image %s in %v", p.Name, res.Timestamp, time.Since(start).Round(time.Second))
	if pwSource != "" {
		log.Printf("gokrazy web interface password: %s", pwSource)
	}
	return &built{Result: res, profile: p, cfg: cfg, password: pw, cleanup: cleanup}, nil
}

// moduleRoot is the directory of the go.mod the go command uses here.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("run board inside the homederp module (no go.mod here)")
	}
	return filepath.Dir(gomod), nil
}

func parseTimestamp(s string) (time.Time, error) {
	if s == "" {
		s = os.Getenv("SOURCE_DATE_EPOCH")
	}
	if s == "" {
		return time.Now().UTC().Truncate(time.Second), nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q: want RFC 3339 (2026-07-01T12:00:00Z) or Unix seconds", s)
	}
	if t.Year() < 1980 {
		return time.Time{}, fmt.Errorf("timestamp %q: before 1980, which FAT cannot store", s)
	}
	return t.UTC(), nil
}

// parseSize parses "2GiB", "1536MiB", "2G" or a byte count.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"G", 1 << 30}, {"M", 1 << 20}}
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			n, err := strconv.ParseInt(strings.TrimSuffix(s, u.suffix), 10, 64)
			if err != nil || n <= 0 {
				return 0, fmt.Errorf("size %q: not a number of %s", s, u.suffix)
			}
			return n * u.mult, nil
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want e.g. 2GiB or 1536MiB", s)
	}
	return n, nil
}

func buildCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	var bf buildFlags
	bf.register(fs)
	out := fs.String("o", "", "The image file to write. Defaults to homederp-<board>.img.")
	sizeFlag := fs.String("size", "2GiB", "The image size; /perm gets what the fixed partitions (1104 MiB) leave. board flash grows /perm to the whole card.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	size, err := parseSize(*sizeFlag)
	if err != nil {
		return err
	}
	if size < disk.MinSize {
		return fmt.Errorf("-size %s: an image needs at least %d MiB", *sizeFlag, (disk.MinSize+(1<<20)-1)>>20)
	}
	b, err := bf.build(ctx)
	if err != nil {
		return err
	}
	defer b.cleanup()
	if *out == "" {
		*out = "homederp-" + b.profile.Name + ".img"
	}
	if err := writeImageFile(b.Result, *out, size); err != nil {
		return err
	}
	printSummary(os.Stdout, b, *out, size)
	return nil
}

// writeImageFile writes the disk image next to path and renames it into
// place, so an interrupted build never leaves a half-written image under
// the final name.
func writeImageFile(r *image.Result, path string, size int64) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0644)
	if err != nil {
		return err
	}
	if _, err := r.WriteDisk(f, size); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

func printSummary(w io.Writer, b *built, out string, size int64) {
	fmt.Fprintf(w, "\n%s: homederp for %s (%s)\n", out, b.profile.Name, b.profile.Description)
	fmt.Fprintf(w, "  build:        %s (linux/%s)\n", b.Timestamp, b.GOARCH)
	fmt.Fprintf(w, "  image:        %d MiB (sparse); /perm fills the rest of the card with board flash\n", size>>20)
	fmt.Fprintf(w, "  boot (FAT16): %.1f MiB of 100 MiB\n", float64(b.Boot.Size())/(1<<20))
	fmt.Fprintf(w, "  root (squashfs, zlib): %.1f MiB of 500 MiB\n", float64(b.RootSize)/(1<<20))
	for _, p := range b.Programs {
		fmt.Fprintf(w, "    %-20s %6.1f MiB  %s\n", p.Path, float64(p.Size)/(1<<20), p.Pkg)
	}
	for _, m := range b.Modules {
		fmt.Fprintf(w, "  %s %s\n", m.Path, m.Version)
	}
	fmt.Fprintf(w, "  cmdline:      %s\n", strings.TrimRight(b.Cmdline, " "))
	fmt.Fprintf(w, "  boots:        %s\n\n", b.profile.Boot)
}
