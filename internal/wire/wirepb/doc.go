// Package wirepb is the Go code generated from proto/sotto/wire/v1/wire.proto
// by scripts/genproto: the messages of sottod's WebSocket protocol. Do not
// edit wire.pb.go; change the .proto and rerun the script.
//
// Parse and write frames with package wire (Decode, Encode), which enforces
// every bound the schema documents; never with proto.Unmarshal directly.
package wirepb
