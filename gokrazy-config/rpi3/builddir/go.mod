// gok builds every package of this instance with this go.mod (gok looks
// for the nearest go.mod above builddir/<package>). It pins what
// homederp's own board tool pins in the repository's go.mod (a test
// checks they agree) and builds the appliance from this checkout.
module gokrazy/build/homederp-rpi3

go 1.26.8

require (
	github.com/gokrazy/firmware v0.0.0-20260522070551-527ce0ed43cf
	github.com/gokrazy/gokrazy v0.0.0-20260418085648-c38c3134b8a7
	github.com/gokrazy/kernel.rpi v0.0.0-20251127164438-9778ec0261de
	github.com/homederp/homederp v0.0.0-00010101000000-000000000000
	tailscale.com v1.102.5
)

replace github.com/homederp/homederp => ../../..
