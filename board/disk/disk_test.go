package disk

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homederp/homederp/internal/testenv"
)

func TestHostHash(t *testing.T) {
	// Observed on a gok image for hostname "hello".
	if got, want := HostHash("hello"), uint32(0x4f9f2cab); got != want {
		t.Errorf("HostHash(hello): got %08x, want %08x", got, want)
	}
	if got, want := PartGUID("hello", 1).String(), "60C24CC1-F3F9-427A-8199-4F9F2CAB0001"; got != want {
		t.Errorf("PartGUID(hello, 1): got %s, want %s", got, want)
	}
	if got, want := DiskGUID("hello").String(), "60C24CC1-F3F9-427A-8199-4F9F2CAB0000"; got != want {
		t.Errorf("DiskGUID(hello): got %s, want %s", got, want)
	}
}

func TestGUIDByteOrder(t *testing.T) {
	g := TypeESP
	want := []byte{0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B}
	if string(g[:]) != string(want) {
		t.Errorf("ESP type bytes: got % x, want % x", g[:], want)
	}
	if got := g.String(); got != "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" {
		t.Errorf("String: got %s", got)
	}
}

func TestLayout(t *testing.T) {
	if _, err := NewLayout(1 << 30); err == nil {
		t.Errorf("NewLayout(1 GiB): got nil error, want too small")
	}
	l, err := NewLayout(2 << 30)
	if err != nil {
		t.Fatal(err)
	}
	// gok's 2 GiB image, as sfdisk -d shows it.
	want := [4]Part{{8192, 204800}, {212992, 1024000}, {1236992, 1024000}, {2260992, 1933278}}
	if l.Parts != want {
		t.Errorf("layout of 2 GiB: got %v, want %v", l.Parts, want)
	}
}

func writeDisk(t *testing.T, size int64, host, goarch string) (string, *Layout) {
	t.Helper()
	l, err := NewLayout(size)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(l.Size()); err != nil {
		t.Fatal(err)
	}
	if err := l.WriteTables(f, NewID(host, goarch)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p, l
}

// TestSfdisk reads the tables with util-linux's sfdisk, which checks both
// GPT headers and their CRCs.
func TestSfdisk(t *testing.T) {
	sfdisk := testenv.NeedCommand(t, "sfdisk")
	for _, goarch := range []string{"amd64", "arm64"} {
		p, l := writeDisk(t, 2<<30, "homederp", goarch)
		out, err := exec.Command(sfdisk, "-J", p).Output()
		if err != nil {
			t.Fatalf("sfdisk -J: %v", err)
		}
		var got struct {
			PartitionTable struct {
				Label      string `json:"label"`
				ID         string `json:"id"`
				FirstLBA   int64  `json:"firstlba"`
				LastLBA    int64  `json:"lastlba"`
				Partitions []struct {
					Start int64  `json:"start"`
					Size  int64  `json:"size"`
					Type  string `json:"type"`
					UUID  string `json:"uuid"`
					Name  string `json:"name"`
				} `json:"partitions"`
			} `json:"partitiontable"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("parsing sfdisk -J: %v\n%s", err, out)
		}
		pt := got.PartitionTable
		if pt.Label != "gpt" || pt.ID != DiskGUID("homederp").String() || pt.FirstLBA != 34 || pt.LastLBA != l.Sectors-34 {
			t.Errorf("sfdisk header: got label %s id %s lbas %d-%d", pt.Label, pt.ID, pt.FirstLBA, pt.LastLBA)
		}
		types := []string{TypeESP.String(), RootType(goarch).String(), TypeLinuxData.String(), TypeLinuxData.String()}
		if len(pt.Partitions) != 4 {
			t.Fatalf("sfdisk: got %d partitions, want 4:\n%s", len(pt.Partitions), out)
		}
		for i, part := range pt.Partitions {
			want := l.Parts[i]
			if part.Start != want.Start || part.Size != want.Sectors || part.Type != types[i] ||
				part.UUID != PartGUID("homederp", i+1).String() || part.Name != partNames[i] {
				t.Errorf("%s partition %d: got %+v, want start %d size %d type %s", goarch, i+1, part, want.Start, want.Sectors, types[i])
			}
		}
		if out, err := exec.Command(sfdisk, "--verify", p).CombinedOutput(); err != nil || !strings.Contains(string(out), "No errors detected") {
			t.Errorf("sfdisk --verify: %v\n%s", err, out)
		}
	}
}

// TestHybridMBR checks LBA 0 as the Raspberry Pi boot ROM reads it, with
// fdisk forced to the MBR label.
func TestHybridMBR(t *testing.T) {
	p, _ := writeDisk(t, 2<<30, "hello", "arm64")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	mbr := b[:512]
	if got := binary.LittleEndian.Uint32(mbr[440:]); got != 0x4f9f2cab {
		t.Errorf("disk signature: got %08x, want 4f9f2cab", got)
	}
	e1, e2 := mbr[446:462], mbr[462:478]
	if e1[0] != 0x80 || e1[4] != 0x0C || binary.LittleEndian.Uint32(e1[8:]) != 8192 || binary.LittleEndian.Uint32(e1[12:]) != 204800 {
		t.Errorf("MBR entry 1: got % x, want active 0x0C at 8192+204800", e1)
	}
	if e2[4] != 0xEE || binary.LittleEndian.Uint32(e2[8:]) != 1 || binary.LittleEndian.Uint32(e2[12:]) != 8191 {
		t.Errorf("MBR entry 2: got % x, want 0xEE covering LBA 1-8191", e2)
	}
	for i, c := range mbr[478:510] {
		if c != 0 {
			t.Errorf("MBR entries 3-4 byte %d: got %#x, want 0", i, c)
		}
	}
	if mbr[510] != 0x55 || mbr[511] != 0xAA {
		t.Errorf("MBR signature: got % x", mbr[510:])
	}
	fdisk := testenv.NeedCommand(t, "fdisk")
	out, err := exec.Command(fdisk, "-l", "-t", "dos", p).CombinedOutput()
	if err != nil {
		t.Fatalf("fdisk -l -t dos: %v\n%s", err, out)
	}
	for _, want := range []string{"Disk identifier: 0x4f9f2cab", "disk.img1 *       8192  212991  204800  100M  c W95 FAT32 (LBA)", "disk.img2             1    8191    8191    4M ee GPT"} {
		if !strings.Contains(strings.Join(strings.Fields(string(out)), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("fdisk -l -t dos: want %q in:\n%s", want, out)
		}
	}
}

func TestReadID(t *testing.T) {
	p, _ := writeDisk(t, 2<<30, "hello", "amd64")
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := ReadID(f)
	if err != nil {
		t.Fatal(err)
	}
	if want := NewID("hello", "amd64"); got != want {
		t.Errorf("ReadID: got %+v, want %+v", got, want)
	}
	if _, err := ReadID(bytes.NewReader(make([]byte, 4096))); err == nil {
		t.Errorf("ReadID(zeros): got nil error")
	}
}
