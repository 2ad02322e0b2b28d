package cmdline

import (
	"strings"
	"testing"
)

func TestCmdline(t *testing.T) {
	const guid = "60C24CC1-F3F9-427A-8199-4F9F2CAB0001"
	pad := strings.Repeat(" ", 64)
	for _, tc := range []struct {
		name string
		in   Options
		want string
	}{
		{
			// kernel.amd64's line: rootwait instead of the fixed 10 s.
			"amd64",
			Options{KernelArgs: "root=/dev/sda2 ro init=/gokrazy/init panic=10 oops=panic rootdelay=10 pci=nommconf\n", SerialConsole: "ttyS0,115200", RootPARTUUID: guid},
			"console=tty1 console=ttyS0,115200 root=PARTUUID=60c24cc1-f3f9-427a-8199-4f9f2cab0001/PARTNROFF=1 ro init=/gokrazy/init panic=10 oops=panic rootwait pci=nommconf" + pad,
		},
		{
			// The observed gok image for kernel.rpi, default console.
			"rpi",
			Options{KernelArgs: "root=/dev/mmcblk0p2 init=/gokrazy/init rootwait panic=10 oops=panic", RootPARTUUID: guid},
			"console=tty1 console=serial0,115200 root=PARTUUID=60c24cc1-f3f9-427a-8199-4f9f2cab0001/PARTNROFF=1 init=/gokrazy/init rootwait panic=10 oops=panic" + pad,
		},
		{
			// kernel.arm64's line waits for nothing: rootwait is added.
			"arm64",
			Options{KernelArgs: "root=/dev/sda2 ro init=/gokrazy/init panic=10 oops=panic", SerialConsole: "serial0,115200", RootPARTUUID: guid},
			"console=tty1 console=serial0,115200 root=PARTUUID=60c24cc1-f3f9-427a-8199-4f9f2cab0001/PARTNROFF=1 ro init=/gokrazy/init panic=10 oops=panic rootwait" + pad,
		},
		{
			"serial off, extra args",
			Options{KernelArgs: "root=/dev/sda2 ro", SerialConsole: "off", ExtraArgs: []string{"quiet", "loglevel=3"}, RootPARTUUID: guid},
			"console=tty1 root=PARTUUID=60c24cc1-f3f9-427a-8199-4f9f2cab0001/PARTNROFF=1 ro rootwait quiet loglevel=3" + pad,
		},
		{
			"UART0 alias",
			Options{KernelArgs: "root=/dev/sda2", SerialConsole: "UART0", RootPARTUUID: guid},
			"console=tty1 console=serial0,115200 root=PARTUUID=60c24cc1-f3f9-427a-8199-4f9f2cab0001/PARTNROFF=1 rootwait" + pad,
		},
		{
			"a delay the config asks for stays",
			Options{KernelArgs: "root=/dev/sda2 rootdelay=10 rootwait", ExtraArgs: []string{"rootdelay=3"}, RootPARTUUID: guid},
			"console=tty1 console=serial0,115200 root=PARTUUID=60c24cc1-f3f9-427a-8199-4f9f2cab0001/PARTNROFF=1 rootwait rootdelay=3" + pad,
		},
	} {
		got, err := Cmdline(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s: Cmdline:\ngot  %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

func TestCmdlineErrors(t *testing.T) {
	for _, in := range []Options{
		{KernelArgs: "init=/gokrazy/init", RootPARTUUID: "x"},                          // nothing to replace
		{KernelArgs: "root=/dev/sda2"},                                                 // no GUID
		{KernelArgs: "root=/dev/sda2", ExtraArgs: []string{"a\nb"}, RootPARTUUID: "x"}, // newline
	} {
		if _, err := Cmdline(in); err == nil {
			t.Errorf("Cmdline(%+v): got nil error, want one", in)
		}
	}
}

func TestLoaderEntry(t *testing.T) {
	got := LoaderEntry("console=tty1 root=PARTUUID=x/PARTNROFF=1" + strings.Repeat(" ", 64))
	if !strings.HasPrefix(got, "title homederp\nlinux /vmlinuz\noptions console=tty1 root=PARTUUID=x/PARTNROFF=1") {
		t.Errorf("LoaderEntry: got %q", got)
	}
	if strings.HasSuffix(got, "\n") || strings.Count(got, "\n") != 2 {
		t.Errorf("LoaderEntry: want exactly two newlines and none at the end, got %q", got)
	}
}

func TestConfigTxt(t *testing.T) {
	const kernel = "# Switch the CPU from ARMv7 into ARMv8 (aarch64) mode\narm_control=0x200\n\nenable_uart=0\n\nkernel=vmlinuz\n"
	got := ConfigTxt(kernel, "serial0,115200", []string{"dtoverlay=disable-bt"})
	want := "# Switch the CPU from ARMv7 into ARMv8 (aarch64) mode\narm_control=0x200\n\nenable_uart=1\n\nkernel=vmlinuz\narm_64bit=1\ndtoverlay=disable-bt\n"
	if got != want {
		t.Errorf("ConfigTxt:\ngot  %q\nwant %q", got, want)
	}
	if got := ConfigTxt(kernel, "off", nil); !strings.Contains(got, "enable_uart=0") {
		t.Errorf("ConfigTxt with the serial console off: want enable_uart=0, got %q", got)
	}
}
