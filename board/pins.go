package main

// The kernel, firmware and EEPROM packages hold no code that runs here:
// importing them pins their versions in go.mod (and keeps go mod tidy
// from dropping them), and the image builder reads their files from the
// module cache at exactly those versions. Bump one with
// go get github.com/gokrazy/kernel.rpi@<version>.
import (
	_ "github.com/gokrazy/firmware"
	_ "github.com/gokrazy/kernel.amd64"
	_ "github.com/gokrazy/kernel.arm64"
	_ "github.com/gokrazy/kernel.rpi"
	_ "github.com/gokrazy/rpi-eeprom"
)
