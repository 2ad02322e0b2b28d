package config

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// genConfig is the config a saver writes in generation gen. Its fields
// are derived from gen so that a mix of two generations is detectable.
func genConfig(gen int) Config {
	c := Default()
	c.Hostname = fmt.Sprintf("h%d.example.com", gen)
	c.Region.ID = 900 + gen%100
	c.Region.Name = fmt.Sprintf("generation %d", gen)
	c.Relay.MeshWith = make([]string, gen%7) // vary the document length
	for i := range c.Relay.MeshWith {
		c.Relay.MeshWith[i] = fmt.Sprintf("m%d.example.com", gen)
	}
	return c
}

func TestMain(m *testing.M) {
	if dir := os.Getenv("HOMEDERP_SAVE_CHILD_DIR"); dir != "" {
		saveForever(dir)
		return
	}
	os.Exit(m.Run())
}

// saveForever is the process TestSaveSurvivesSIGKILL kills: it saves new
// generations in a loop (bounded to 10 s in case nobody kills it).
func saveForever(dir string) {
	gen, _ := strconv.Atoi(os.Getenv("HOMEDERP_SAVE_CHILD_GEN"))
	s, err := Open(dir)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println("saving")
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); gen++ {
		if err := s.Save(genConfig(gen)); err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
	}
}

// TestSaveSurvivesSIGKILL kills a process that saves in a loop at random
// moments and checks that config.json is always a whole document of one
// generation, never empty, truncated or mixed, and never older than what
// was already on disk.
func TestSaveSurvivesSIGKILL(t *testing.T) {
	const kills = 200
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save(genConfig(0)); err != nil {
		t.Fatal(err)
	}
	lastGen := 0
	for i := 0; i < kills; i++ {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(),
			"HOMEDERP_SAVE_CHILD_DIR="+dir,
			"HOMEDERP_SAVE_CHILD_GEN="+strconv.Itoa(lastGen+1))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || line != "saving\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child did not start saving: %q, %v", line, err)
		}
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()

		c, err := Load(dir)
		if err != nil {
			t.Fatalf("kill %d: config after SIGKILL: %v", i, err)
		}
		gen := 0
		if _, err := fmt.Sscanf(c.Hostname, "h%d.example.com", &gen); err != nil {
			t.Fatalf("kill %d: unexpected hostname %q", i, c.Hostname)
		}
		if got, want := c, genConfig(gen); got.Region != want.Region || len(got.Relay.MeshWith) != len(want.Relay.MeshWith) {
			t.Fatalf("kill %d: config mixes generations: %+v", i, got)
		}
		if gen < lastGen {
			t.Fatalf("kill %d: generation went back from %d to %d", i, lastGen, gen)
		}
		lastGen = gen
	}
	// Leftover temp files from killed writers are cleaned up on Open.
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(left) != 0 {
		t.Errorf("temp files left after Open: %v", left)
	}
	t.Logf("%d kills, last generation on disk %d", kills, lastGen)
}
