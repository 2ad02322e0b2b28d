// Command board builds homederp's gokrazy images, writes them to SD cards
// and disks, and updates running boxes over the network.
//
//	go run ./board build  -board rpi4 -o homederp-rpi4.img
//	go run ./board flash  -board rpi4 /dev/sdX
//	go run ./board flash  -image homederp-rpi4.img /dev/sdX
//	go run ./board update -board rpi4 -host homederp.lan
//	go run ./board boards
//
// Each board is a gokrazy instance in gokrazy-config/<board>/config.json,
// the same file upstream gok reads. See board/README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/homederp/homederp/board/profile"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("board: ")
	if err := run(os.Args[1:]); err != nil {
		log.Fatal(err)
	}
}

const usage = `usage:
  board build  -board NAME [-o FILE] [-size 2GiB]      build a disk image file
  board flash  -board NAME DEVICE                      build and write to an SD card or disk
  board flash  -image FILE DEVICE                      write an image file to an SD card or disk
  board update -board NAME [-host HOST]                build and push to a running box
  board boards                                         list the boards

Run "board COMMAND -h" for a command's flags.`

func run(args []string) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "build":
		return buildCmd(ctx, args[1:])
	case "flash":
		return flashCmd(ctx, args[1:])
	case "update":
		return updateCmd(ctx, args[1:])
	case "boards":
		for _, p := range profile.Profiles {
			fmt.Printf("%-10s %s\n           boot: %s\n", p.Name, p.Description, p.Boot)
		}
		return nil
	case "-h", "-help", "--help", "help":
		fmt.Println(usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
}
