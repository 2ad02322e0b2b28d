package portmap

import "github.com/homederp/homederp/internal/usermsg"

// Texts are Status's sentences as the web UI translates them
// (internal/usermsg); a zero Msg goes with an empty sentence.
type Texts struct {
	ExternalProblem, IPv6, Problem, Hairpin usermsg.Msg
}
