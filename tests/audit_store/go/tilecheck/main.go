// Command tilecheck reads an infracms log through its C2SP tlog-tiles with Go's
// golang.org/x/mod/sumdb/tlog, which authenticates every tile against the signed
// tree hash (tlog.TileHashReader) before it proves anything with it.
//
// It reads one JSON request on standard input and writes one JSON answer:
//
//	{"verifier_key": K, "checkpoint": signed note,
//	 "tiles": {"tile/0/000": base64, ...},          as served, C2SP paths
//	 "records": [{"index": i, "data": base64}, ...], leaf data of entries
//	 "old_size": m, "old_root": base64}
//
// and answers {"error": "", "size": n, "records": ["", ...], "tree": "",
// "asked": [paths]}: one error text per check, "" where it verifies. Go's sumdb
// tiles carry the height in the path (tile/8/0/000); C2SP tlog-tiles do not
// (tile/0/000): that is the only translation made.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type record struct {
	Index int64  `json:"index"`
	Data  []byte `json:"data"`
}

type request struct {
	VerifierKey string            `json:"verifier_key"`
	Checkpoint  string            `json:"checkpoint"`
	Tiles       map[string][]byte `json:"tiles"`
	Records     []record          `json:"records"`
	OldSize     int64             `json:"old_size"`
	OldRoot     tlog.Hash         `json:"old_root"`
}

type answer struct {
	Error   string   `json:"error"`
	Size    int64    `json:"size"`
	Records []string `json:"records"`
	Tree    string   `json:"tree"`
	Asked   []string `json:"asked"`
}

type tiles struct {
	served map[string][]byte
	asked  []string
}

func (t *tiles) Height() int { return 8 }

func (t *tiles) ReadTiles(want []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(want))
	for i, tile := range want {
		path := "tile/" + strings.TrimPrefix(tile.Path(), "tile/8/")
		t.asked = append(t.asked, path)
		data, ok := t.served[path]
		if !ok {
			return nil, fmt.Errorf("tile %s was not served", path)
		}
		out[i] = data
	}
	return out, nil
}

func (t *tiles) SaveTiles([]tlog.Tile, [][]byte) {}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func run(req request) answer {
	verifier, err := note.NewVerifier(req.VerifierKey)
	if err != nil {
		return answer{Error: "verifier key: " + err.Error()}
	}
	n, err := note.Open([]byte(req.Checkpoint), note.VerifierList(verifier))
	if err != nil {
		return answer{Error: "checkpoint: " + err.Error()}
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 || lines[0] != verifier.Name() {
		return answer{Error: "checkpoint body is not origin, size, root"}
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		return answer{Error: "checkpoint size: " + err.Error()}
	}
	root, err := tlog.ParseHash(lines[2])
	if err != nil {
		return answer{Error: "checkpoint root: " + err.Error()}
	}
	served := &tiles{served: req.Tiles}
	reader := tlog.TileHashReader(tlog.Tree{N: size, Hash: root}, served)
	out := answer{Size: size, Records: []string{}}
	for _, r := range req.Records {
		proof, err := tlog.ProveRecord(size, r.Index, reader)
		if err == nil {
			err = tlog.CheckRecord(proof, size, root, r.Index, tlog.RecordHash(r.Data))
		}
		out.Records = append(out.Records, errText(err))
	}
	proof, err := tlog.ProveTree(size, req.OldSize, reader)
	if err == nil {
		err = tlog.CheckTree(proof, size, root, req.OldSize, req.OldRoot)
	}
	out.Tree = errText(err)
	out.Asked = served.asked
	return out
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "tilecheck:", err)
		os.Exit(2)
	}
	if err := json.NewEncoder(os.Stdout).Encode(run(req)); err != nil {
		fmt.Fprintln(os.Stderr, "tilecheck:", err)
		os.Exit(2)
	}
}
