package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"strings"

	"github.com/homederp/homederp/board/disk"
	"github.com/homederp/homederp/board/flash"
)

func flashCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("flash", flag.ContinueOnError)
	var bf buildFlags
	bf.register(fs)
	imageFile := fs.String("image", "", "Write this image file (from board build) instead of building one.")
	yes := fs.Bool("yes", false, "Do not ask before overwriting the device.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: board flash (-board NAME | -image FILE) [-yes] DEVICE")
	}
	if (bf.board == "") == (*imageFile == "") {
		return fmt.Errorf("give either -board or -image")
	}
	return flashTo(ctx, fs.Arg(0), &bf, *imageFile, *yes, os.Stdin, os.Stdout, flash.Host)
}

// flashTo checks dev, asks, and writes the image to it.
func flashTo(ctx context.Context, dev string, bf *buildFlags, imageFile string, yes bool, in io.Reader, out io.Writer, env flash.Env) error {
	d, err := flash.Inspect(dev, env)
	if err != nil {
		return err
	}
	if err := d.InUse(env); err != nil {
		return err
	}
	if d.Size < disk.MinSize {
		return fmt.Errorf("%s holds %d MiB; homederp needs at least %d MiB", dev, d.Size>>20, (disk.MinSize+(1<<20)-1)>>20)
	}
	// Build (or check the image) before asking, so the question comes
	// right before the write.
	var b *built
	var src *os.File
	if imageFile != "" {
		src, err = os.Open(imageFile)
		if err != nil {
			return err
		}
		defer src.Close()
		if _, err := disk.ReadID(src); err != nil {
			return fmt.Errorf("%s: %w", imageFile, err)
		}
	} else {
		b, err = bf.build(ctx)
		if err != nil {
			return err
		}
		defer b.cleanup()
	}

	fmt.Fprintf(out, "\nThis will ERASE everything on:\n%s", d.Describe())
	if lsblk, err := exec.LookPath("lsblk"); err == nil {
		if o, err := exec.Command(lsblk, "-o", "NAME,SIZE,FSTYPE,LABEL,MOUNTPOINTS", d.Path).CombinedOutput(); err == nil {
			fmt.Fprintf(out, "%s", o)
		}
	}
	if !yes {
		fmt.Fprintf(out, "Type yes to overwrite %s: ", d.Path)
		line, _ := bufio.NewReader(in).ReadString('\n')
		if strings.TrimSpace(line) != "yes" {
			return fmt.Errorf("not confirmed; %s is unchanged", d.Path)
		}
	}
	// O_EXCL on a block device fails if the kernel has it in use (mounted),
	// closing the gap between the check above and the write.
	f, err := os.OpenFile(d.Path, os.O_RDWR|os.O_EXCL, 0)
	if err != nil {
		return fmt.Errorf("opening %s exclusively: %w", d.Path, err)
	}
	defer f.Close()
	size, err := flash.Size(f)
	if err != nil {
		return err
	}
	var l *disk.Layout
	if src != nil {
		l, err = flash.CopyImage(f, size, src)
	} else {
		l, err = b.WriteDisk(f, size)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", d.Path, err)
	}
	if err := flash.RereadPartitions(f); err != nil {
		log.Printf("the kernel did not re-read the partition table (replug the card to see it): %v", err)
	}
	fmt.Fprintf(out, "%s: written; /perm is %d MiB. Put it in the box and power it on.\n", d.Path, l.Part(disk.Perm).Size()>>20)
	return nil
}
