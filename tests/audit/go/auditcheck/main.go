// Command auditcheck holds infracms' audit code to Go's golang.org/x/mod/sumdb
// packages: another implementation of C2SP signed-note and RFC 6962/9162 trees.
//
// It reads one JSON request on standard input and writes one JSON answer:
//
//	{"op": "open", "verifier_key": K, "note": N}
//	    note.Open with K, then the C2SP tlog-checkpoint body parsed by hand.
//	{"op": "check", "inclusion": [...], "consistency": [...]}
//	    tlog.CheckRecord and tlog.CheckTree on each proof; "" where it verifies.
//	{"op": "vectors", "seed": hex, "name": S, "origin": O, "records": [base64...],
//	 "text": T, "checkpoint_sizes": [...]}
//	    a key from the seed, T and a checkpoint per size signed with note.Sign, and
//	    every record hash, stored hash, tree hash and proof tlog computes.
//
// Built by tests/audit/test_go_interop.py with GO111MODULE=off against Debian's
// golang-golang-x-mod-dev (GOPATH=/usr/share/gocode).
package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type request struct {
	Op          string             `json:"op"`
	VerifierKey string             `json:"verifier_key"`
	Note        string             `json:"note"`
	Inclusion   []inclusionCheck   `json:"inclusion"`
	Consistency []consistencyCheck `json:"consistency"`
	Seed        string             `json:"seed"`
	Name        string             `json:"name"`
	Origin      string             `json:"origin"`
	Records     [][]byte           `json:"records"`
	Text        string             `json:"text"`
	Checkpoints []int64            `json:"checkpoint_sizes"`
}

type inclusionCheck struct {
	Size  int64       `json:"size"`
	Root  tlog.Hash   `json:"root"`
	Index int64       `json:"index"`
	Leaf  tlog.Hash   `json:"leaf"`
	Proof []tlog.Hash `json:"proof"`
}

type consistencyCheck struct {
	OldSize int64       `json:"old_size"`
	OldRoot tlog.Hash   `json:"old_root"`
	Size    int64       `json:"size"`
	Root    tlog.Hash   `json:"root"`
	Proof   []tlog.Hash `json:"proof"`
}

type opened struct {
	Error   string    `json:"error"`
	Text    string    `json:"text"`
	Signers []string  `json:"signers"`
	Origin  string    `json:"origin"`
	Size    int64     `json:"size"`
	Root    tlog.Hash `json:"root"`
}

type proofVector struct {
	Size  int64       `json:"size"`
	Index int64       `json:"index"`
	Proof []tlog.Hash `json:"proof"`
}

type treeProofVector struct {
	OldSize int64       `json:"old_size"`
	Size    int64       `json:"size"`
	Proof   []tlog.Hash `json:"proof"`
}

type vectors struct {
	Name         string            `json:"name"`
	SignerKey    string            `json:"signer_key"`
	VerifierKey  string            `json:"verifier_key"`
	Text         string            `json:"text"`
	SignedNote   string            `json:"signed_note"`
	Origin       string            `json:"origin"`
	Checkpoints  []string          `json:"signed_checkpoints"`
	Records      [][]byte          `json:"records"`
	RecordHashes []tlog.Hash       `json:"record_hashes"`
	StoredHashes []tlog.Hash       `json:"stored_hashes"`
	TreeHashes   []tlog.Hash       `json:"tree_hashes"`
	Inclusion    []proofVector     `json:"inclusion"`
	Consistency  []treeProofVector `json:"consistency"`
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fail(err)
	}
	var answer any
	var err error
	switch req.Op {
	case "open":
		answer = open(req)
	case "check":
		answer = check(req)
	case "vectors":
		answer, err = makeVectors(req)
	default:
		err = fmt.Errorf("unknown op %q", req.Op)
	}
	if err != nil {
		fail(err)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(answer); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "auditcheck:", err)
	os.Exit(2)
}

// open verifies a signed note with note.Open and parses a C2SP checkpoint body.
func open(req request) opened {
	verifier, err := note.NewVerifier(req.VerifierKey)
	if err != nil {
		return opened{Error: "verifier key: " + err.Error()}
	}
	n, err := note.Open([]byte(req.Note), note.VerifierList(verifier))
	if err != nil {
		return opened{Error: err.Error()}
	}
	out := opened{Text: n.Text}
	for _, sig := range n.Sigs {
		out.Signers = append(out.Signers, fmt.Sprintf("%s+%08x", sig.Name, sig.Hash))
	}
	lines := strings.Split(strings.TrimSuffix(n.Text, "\n"), "\n")
	if len(lines) < 3 {
		out.Error = "checkpoint body has fewer than 3 lines"
		return out
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		out.Error = "checkpoint size is not canonical decimal"
		return out
	}
	root, err := tlog.ParseHash(lines[2])
	if err != nil {
		out.Error = "checkpoint root: " + err.Error()
		return out
	}
	out.Origin, out.Size, out.Root = lines[0], size, root
	return out
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// check runs tlog.CheckRecord and tlog.CheckTree on proofs made elsewhere.
func check(req request) map[string][]string {
	out := map[string][]string{"inclusion": {}, "consistency": {}}
	for _, c := range req.Inclusion {
		err := tlog.CheckRecord(c.Proof, c.Size, c.Root, c.Index, c.Leaf)
		out["inclusion"] = append(out["inclusion"], errText(err))
	}
	for _, c := range req.Consistency {
		err := tlog.CheckTree(c.Proof, c.Size, c.Root, c.OldSize, c.OldRoot)
		out["consistency"] = append(out["consistency"], errText(err))
	}
	return out
}

type storage []tlog.Hash

func (s storage) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x >= int64(len(s)) {
			return nil, errors.New("hash not stored yet")
		}
		out[i] = s[x]
	}
	return out, nil
}

// makeVectors signs with a key made from the seed and computes tlog's view of the records.
func makeVectors(req request) (*vectors, error) {
	seed, err := hex.DecodeString(req.Seed)
	if err != nil || len(seed) != 32 {
		return nil, errors.New("seed must be 32 bytes of hex")
	}
	skey, vkey, err := note.GenerateKey(bytes.NewReader(seed), req.Name)
	if err != nil {
		return nil, err
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, err
	}
	signedNote, err := note.Sign(&note.Note{Text: req.Text}, signer)
	if err != nil {
		return nil, err
	}
	v := &vectors{Name: req.Name, SignerKey: skey, VerifierKey: vkey, Text: req.Text,
		SignedNote: string(signedNote), Origin: req.Origin, Records: req.Records}
	var stored storage
	for i, record := range req.Records {
		hashes, err := tlog.StoredHashes(int64(i), record, stored)
		if err != nil {
			return nil, err
		}
		stored = append(stored, hashes...)
		v.RecordHashes = append(v.RecordHashes, tlog.RecordHash(record))
	}
	v.StoredHashes = stored
	n := int64(len(req.Records))
	for t := int64(1); t <= n; t++ {
		th, err := tlog.TreeHash(t, stored)
		if err != nil {
			return nil, err
		}
		v.TreeHashes = append(v.TreeHashes, th)
		for i := int64(0); i < t; i++ {
			p, err := tlog.ProveRecord(t, i, stored)
			if err != nil {
				return nil, err
			}
			v.Inclusion = append(v.Inclusion, proofVector{Size: t, Index: i, Proof: nonNil(p)})
		}
		for m := int64(1); m <= t; m++ {
			p, err := tlog.ProveTree(t, m, stored)
			if err != nil {
				return nil, err
			}
			v.Consistency = append(v.Consistency, treeProofVector{OldSize: m, Size: t, Proof: nonNil(p)})
		}
	}
	for _, size := range req.Checkpoints {
		if size < 1 || size > n {
			return nil, fmt.Errorf("checkpoint size %d is outside [1, %d]", size, n)
		}
		body := fmt.Sprintf("%s\n%d\n%s\n", req.Origin, size, v.TreeHashes[size-1])
		signed, err := note.Sign(&note.Note{Text: body}, signer)
		if err != nil {
			return nil, err
		}
		v.Checkpoints = append(v.Checkpoints, string(signed))
	}
	return v, nil
}

func nonNil(p []tlog.Hash) []tlog.Hash {
	if p == nil {
		return []tlog.Hash{}
	}
	return p
}
