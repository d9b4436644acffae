// A Go client of Paved built from proto/ alone (buf.gen.go.yaml): it
// deploys a spec built in code and reads a refusal's details.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	provisioner "paved.dev/platform/gen/paved/provisioner/v1"
)

func main() {
	conn, err := grpc.Dial(os.Getenv("PAVED_ENDPOINT"), grpc.WithInsecure())
	if err != nil {
		fmt.Println("dial:", err)
		os.Exit(1)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+os.Getenv("PAVED_TOKEN"))
	client := provisioner.NewProvisionerServiceClient(conn)

	spec := &provisioner.WorkloadSpec{Name: "from-go", Command: []string{"hello"}, Env: map[string]string{"HELLO_VERSION": "go"}}
	applied, err := client.ApplyWorkload(ctx, &provisioner.ApplyWorkloadRequest{Environment: "dev", Spec: spec})
	if err != nil {
		fmt.Println("apply:", err)
		os.Exit(1)
	}
	fmt.Printf("deployed revision %d of %s\n", applied.GetRevision().GetNumber(), applied.GetWorkload().GetName())

	spec.Health = &provisioner.HealthCheck{Period: durationpb.New(time.Second), Timeout: durationpb.New(2 * time.Second)}
	_, err = client.ApplyWorkload(ctx, &provisioner.ApplyWorkloadRequest{Environment: "dev", Spec: spec})
	refused := status.Convert(err)
	fmt.Printf("refused: %s", refused.Code())
	for _, detail := range refused.Details() {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			fmt.Printf(" reason=%s domain=%s", d.GetReason(), d.GetDomain())
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				fmt.Printf(" field=%s", v.GetField())
			}
		}
	}
	fmt.Println()
}
