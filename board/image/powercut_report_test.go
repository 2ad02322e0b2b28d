package image

import (
	"fmt"
	"slices"
	"strings"
)

// powercutReport is powercut-figures.json: the run, every cut, and the
// summary the issue asks for.
type powercutReport struct {
	Date           string         `json:"date"`
	Machine        string         `json:"machine"`
	Seed           uint64         `json:"seed"` // HOMEDERP_POWERCUT_SEED replays the run
	Seconds        float64        `json:"seconds"`
	Cuts           []cutRecord    `json:"cuts"`
	ByKind         map[string]int `json:"cuts_by_kind"`
	BootsOK        int            `json:"boots_ok"`           // boots that passed every check
	Repaired       int            `json:"boots_with_repairs"` // any line of repairRx
	Replayed       int            `json:"boots_with_journal_replay"`
	OtherRepairs   int            `json:"boots_with_other_repairs"` // orphans cleaned up, errors found: more than a journal replay
	Roots          []int          `json:"roots"`                    // the root partition after each cut
	FinalFsckClean bool           `json:"final_fsck_clean"`
	Load           [3]float64     `json:"load"` // at the end
}

func (r *powercutReport) summarize() {
	r.ByKind = map[string]int{}
	r.BootsOK, r.Repaired, r.Replayed, r.OtherRepairs, r.Roots = 0, 0, 0, 0, nil
	for _, c := range r.Cuts {
		r.ByKind[c.Kind]++
		if c.OK {
			r.BootsOK++
		}
		if len(c.Repairs) > 0 {
			r.Repaired++
		}
		replayed, other := false, false
		for _, l := range c.Repairs {
			if strings.Contains(l, "recovery complete") || strings.Contains(l, "recovering journal") {
				replayed = true
			} else {
				other = true
			}
		}
		if replayed {
			r.Replayed++
		}
		if other {
			r.OtherRepairs++
		}
		r.Roots = append(r.Roots, c.Root)
	}
	r.Load = loadAverage()
}

func (r *powercutReport) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cuts: %d (", len(r.Cuts))
	kinds := cutKinds
	if r.ByKind[cutBootWrite] > 0 {
		kinds = append(slices.Clone(kinds), cutBootWrite)
	}
	for i, k := range kinds {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", k, r.ByKind[k])
	}
	fmt.Fprintf(&b, ") in %.0f s, seed %d\n", r.Seconds, r.Seed)
	fmt.Fprintf(&b, "boots that passed every check: %d of %d\n", r.BootsOK, len(r.Cuts))
	fmt.Fprintf(&b, "boots where the kernel repaired /perm at mount: %d (journal replayed %d, more than that %d)\n", r.Repaired, r.Replayed, r.OtherRepairs)
	fmt.Fprintf(&b, "root partition after each cut: %v\n", r.Roots)
	fmt.Fprintf(&b, "e2fsck -fn /perm at the end: clean %v\n", r.FinalFsckClean)
	fmt.Fprintf(&b, "load average at the end: %.2f %.2f %.2f; %s", r.Load[0], r.Load[1], r.Load[2], r.Machine)
	return b.String()
}
