package labrpc

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestMethodTypes(t *testing.T) {
	for _, tc := range []struct {
		path    string
		in, out string
		ok      bool
	}{
		{Echo_Say_FullMethodName, "protolab.EchoRequest", "protolab.EchoReply", true},
		{Chat_Join_FullMethodName, "protolab.ChatMessage", "protolab.ChatMessage", true},
		{"/protolab.Echo/Shout", "", "", false},
		{"/other.Echo/Say", "", "", false},
		{"/protolab.Nothing/Say", "", "", false},
		{"protolab.Echo", "", "", false},
		{"", "", "", false},
	} {
		in, out, ok := MethodTypes(tc.path)
		if ok != tc.ok || ok && (string(in.FullName()) != tc.in || string(out.FullName()) != tc.out) {
			t.Errorf("MethodTypes(%q) = %v %v %v", tc.path, in, out, ok)
		}
	}
}

// TestGeneratedCodeIsCurrent regenerates the Go code from protolab.proto
// and compares: a change to the .proto must come with its code.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	if _, err := exec.LookPath("protoc"); err != nil {
		if os.Getenv("PROTOLAB_TEST_STRICT") != "" {
			t.Fatal("protoc is missing (scripts/test.sh installs protobuf-compiler)")
		}
		t.Skip("protoc is missing: apt-get install -y protobuf-compiler (scripts/test.sh does)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	for _, tool := range []string{"google.golang.org/protobuf/cmd/protoc-gen-go", "google.golang.org/grpc/cmd/protoc-gen-go-grpc"} {
		cmd := exec.Command("go", "build", "-o", bin+"/", tool)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", tool, err, out)
		}
	}
	cmd := exec.Command("protoc", "-I", ".", "--go_out="+dir, "--go_opt=paths=source_relative",
		"--go-grpc_out="+dir, "--go-grpc_opt=paths=source_relative", "protolab.proto")
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, out)
	}
	for _, f := range []string{"protolab.pb.go", "protolab_grpc.pb.go"} {
		want, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is not what protolab.proto generates: run scripts/gen-proto.sh", f)
		}
	}
}
