// gok builds every package of this instance with this go.mod (gok looks
// for the nearest go.mod above builddir/<package>). It pins what
// homederp's own board tool pins in the repository's go.mod (a test
// checks they agree) and builds the appliance from this checkout.
module gokrazy/build/homederp-amd64

go 1.26.8

require (
	github.com/gokrazy/gokrazy v0.0.0-20260418085648-c38c3134b8a7
	github.com/gokrazy/kernel.amd64 v0.0.0-20260705070735-de680abf072b
	github.com/homederp/homederp v0.0.0-00010101000000-000000000000
	tailscale.com v1.102.5
)

replace github.com/homederp/homederp => ../../..
