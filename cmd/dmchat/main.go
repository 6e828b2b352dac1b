// Command dmchat is an example program of the appclient package: an end-to-end encrypted
// direct-message chat on a terminal. It publishes the user's public key, opens the real-time
// WebSocket (reconnecting by itself and resuming after the last message), prints what
// arrives, decrypted, and sends each line typed on standard input to the peer.
//
//	DMCHAT_TOKEN=$GOLD_TOKEN go run ./cmd/dmchat -api http://127.0.0.1:8080 \
//	    -user $GOLD_ID -key .data/gold.key -to $CREATOR_ID
//
// The private key is kept in the -key file (created, mode 0600, when missing); the server
// only ever sees the public key and ciphertext.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/google/uuid"

	"github.com/creatorvault/orchestrator/appclient"
)

func main() {
	api := flag.String("api", "http://127.0.0.1:8080", "the API's base URL")
	user := flag.String("user", "", "your user id (the token's subject)")
	keyFile := flag.String("key", "dmchat.key", "file holding your X25519 private key (created when missing)")
	to := flag.String("to", "", "the user id to chat with")
	flag.Parse()
	token := os.Getenv("DMCHAT_TOKEN")
	if token == "" {
		log.Fatal("set DMCHAT_TOKEN to your bearer token (kept out of the command line and shell history)")
	}
	me, err := uuid.Parse(*user)
	if err != nil {
		log.Fatal("-user must be your user id")
	}
	peer, err := uuid.Parse(*to)
	if err != nil {
		log.Fatal("-to must be the other user's id")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *api, token, me, peer, *keyFile); err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}

func run(ctx context.Context, api, token string, me, peer uuid.UUID, keyFile string) error {
	keys, err := loadOrCreateKey(keyFile)
	if err != nil {
		return err
	}
	c := appclient.New(api, token, me, keys)
	if err := c.PublishKey(ctx); err != nil {
		return fmt.Errorf("publish key: %w", err)
	}
	rt, err := c.Connect(ctx, appclient.RealtimeOptions{})
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer rt.Close()

	go func() {
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			if _, err := rt.Send(ctx, peer, in.Bytes()); err != nil {
				fmt.Fprintln(os.Stderr, "not sent:", err)
			}
		}
	}()
	for ev := range rt.Events() {
		switch ev := ev.(type) {
		case appclient.MessageEvent:
			if ev.Err != nil {
				fmt.Printf("[%s] %s: (cannot decrypt: %v)\n", ev.SentAt.Local().Format("15:04"), ev.SenderID, ev.Err)
				continue
			}
			fmt.Printf("[%s] %s: %s\n", ev.SentAt.Local().Format("15:04"), ev.SenderID, ev.Plaintext)
			_ = rt.MarkRead(ev.ID)
		case appclient.TypingEvent:
			if ev.IsTyping {
				fmt.Printf("%s is typing…\n", ev.UserID)
			}
		case appclient.PresenceEvent:
			fmt.Printf("%s is %s\n", ev.UserID, map[bool]string{true: "online", false: "offline"}[ev.Online])
		case appclient.ReadReceiptEvent:
			fmt.Printf("read: %s\n", ev.MessageID)
		case appclient.ErrorEvent:
			fmt.Fprintf(os.Stderr, "error %s: %s\n", ev.Code, ev.Message)
		case appclient.DisconnectedEvent:
			if !ev.Final {
				fmt.Fprintf(os.Stderr, "disconnected (%d %s); reconnecting in %s\n", ev.Code, ev.Reason, ev.RetryIn)
			}
		}
	}
	return rt.Err()
}

func loadOrCreateKey(path string) (*appclient.KeyPair, error) {
	raw, err := os.ReadFile(path)
	if err == nil {
		return appclient.LoadKey(raw)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	k, err := appclient.GenerateKey()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, k.PrivateKey(), 0o600); err != nil {
		return nil, err
	}
	return k, nil
}
