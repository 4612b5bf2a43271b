// Package labrpc is the lab's own gRPC services, generated from
// protolab.proto: the unary echo (protolab.Echo/Say) and the chat room
// (protolab.Chat/Join, a bidirectional stream per member). A grpc app serves
// them, the probe calls them, and the decoder names the fields of the
// messages it sees by them (MethodTypes). It is a leaf of the project: the
// apps may import it.
package labrpc

import (
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// MethodTypes returns the request and response types of one of the lab's
// methods, named by its HTTP/2 :path ("/protolab.Echo/Say").
func MethodTypes(path string) (in, out protoreflect.MessageDescriptor, ok bool) {
	service, method, found := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if !found {
		return nil, nil, false
	}
	pkg, name, found := strings.Cut(service, ".")
	if !found || protoreflect.FullName(pkg) != File_protolab_proto.Package() {
		return nil, nil, false
	}
	s := File_protolab_proto.Services().ByName(protoreflect.Name(name))
	if s == nil {
		return nil, nil, false
	}
	m := s.Methods().ByName(protoreflect.Name(method))
	if m == nil {
		return nil, nil, false
	}
	return m.Input(), m.Output(), true
}
