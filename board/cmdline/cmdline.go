// Package cmdline renders the small text files on a gokrazy boot
// partition whose bytes matter: the kernel command line (cmdline.txt), the
// systemd-boot entry that repeats it, and the Raspberry Pi's config.txt.
//
// The command line's layout is what gokrazy's update handlers expect:
//
//	console=tty1 console=<serial> <kernel package args> <extra args><64 spaces>
//
// with the kernel package's root=/dev/sda2 (or /dev/mmcblk0p2) replaced by
// root=PARTUUID=<GUID of partition 1>/PARTNROFF=1, so the kernel mounts
// partition 1+1 of whatever disk carries that GUID.
//
// The kernel waits for that disk with rootwait, which mounts the root as
// soon as the disk appears (USB and NVMe disks are probed asynchronously,
// so without any wait the mount can run first and panic). kernel.amd64's
// own line has rootdelay=10 instead, which always sleeps 10 seconds
// before mounting: it is dropped, because it costs every boot and every
// update those 10 seconds and rootwait covers the case it was for. A
// rootdelay in the config's KernelExtraArgs stays. On /update/switch the
// device rewrites root= in place, in cmdline.txt and in the loader entry,
// with a string of equal length (PARTNROFF=1 ↔ 2); the 64 spaces give room
// if a later form is longer. There is no trailing newline: gokrazy's
// testboot inserts its flag before a newline, and the loader entry must not
// gain one on its title or linux lines.
package cmdline

import (
	"fmt"
	"regexp"
	"strings"
)

// Padding is the number of spaces after the command line.
const Padding = 64

var (
	rootRe      = regexp.MustCompile(`root=/dev/(?:sda|mmcblk0p)2\b`)
	rootDelayRe = regexp.MustCompile(`^rootdelay=\d*$`)
)

// Options are the inputs of the command line.
type Options struct {
	// KernelArgs is the kernel package's cmdline.txt, e.g.
	// "root=/dev/sda2 ro init=/gokrazy/init panic=10 oops=panic".
	KernelArgs string
	// SerialConsole is the config's SerialConsole, e.g. "ttyS0,115200";
	// "disabled" or "off" means no serial console.
	SerialConsole string
	// ExtraArgs are the config's KernelExtraArgs.
	ExtraArgs []string
	// RootPARTUUID is the GUID of partition 1, e.g.
	// "60c24cc1-f3f9-427a-8199-4f9f2cab0001".
	RootPARTUUID string
}

// Cmdline returns the padded kernel command line.
func Cmdline(o Options) (string, error) {
	var parts []string
	parts = append(parts, "console=tty1")
	switch o.SerialConsole {
	case "disabled", "off":
	case "", "UART0":
		parts = append(parts, "console=serial0,115200")
	default:
		parts = append(parts, "console="+o.SerialConsole)
	}
	wait := false
	for _, a := range strings.Fields(o.KernelArgs) {
		switch {
		case a == "rootwait":
		case rootDelayRe.MatchString(a):
			// rootwait goes where the delay was.
		default:
			parts = append(parts, a)
			continue
		}
		if !wait {
			parts = append(parts, "rootwait")
			wait = true
		}
	}
	if !wait {
		parts = append(parts, "rootwait")
	}
	parts = append(parts, o.ExtraArgs...)
	line := strings.Join(parts, " ")
	if !rootRe.MatchString(line) {
		return "", fmt.Errorf("kernel command line %q has no root=/dev/sda2 or root=/dev/mmcblk0p2 to replace", line)
	}
	if o.RootPARTUUID == "" {
		return "", fmt.Errorf("no PARTUUID for the root")
	}
	line = rootRe.ReplaceAllLiteralString(line, "root=PARTUUID="+strings.ToLower(o.RootPARTUUID)+"/PARTNROFF=1")
	if strings.Contains(line, "\n") {
		return "", fmt.Errorf("kernel command line contains a newline")
	}
	return line + strings.Repeat(" ", Padding), nil
}

// LoaderEntry returns loader/entries/gokrazy.conf for systemd-boot: the
// kernel at /vmlinuz with the same padded command line, which the device
// rewrites together with cmdline.txt.
func LoaderEntry(cmdline string) string {
	return "title homederp\nlinux /vmlinuz\noptions " + cmdline
}

// ConfigTxt returns the Raspberry Pi firmware's config.txt: the kernel
// package's, with the UART enabled unless the serial console is off,
// arm_64bit=1, and the config's extra lines appended.
//
// arm_64bit=1 says in today's words what the kernel package's
// arm_control=0x200 says in the deprecated form: the kernel is 64-bit.
// The image's kernel is gzip'd, so the firmware cannot read that from the
// kernel's header, and its name (vmlinuz) is not one the firmware infers
// it from.
func ConfigTxt(kernelConfig, serialConsole string, extraLines []string) string {
	s := kernelConfig
	if serialConsole != "off" {
		s = strings.ReplaceAll(s, "enable_uart=0", "enable_uart=1")
	}
	s = strings.TrimRight(s, "\n") + "\n"
	if !strings.Contains(s, "arm_64bit=") {
		s += "arm_64bit=1\n"
	}
	for _, l := range extraLines {
		s += l + "\n"
	}
	return s
}
