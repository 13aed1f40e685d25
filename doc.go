// Package boomerang is a callback-and-retry event engine on Redis: a
// producer POSTs an event, Boomerang records it before answering, runs the
// business logic of its type with exponential-backoff retries scheduled in
// Redis, and when the outcome is final calls the producer back (success_url
// or fail_url) and keeps the outcome for anyone who polls.
//
// The Engine is the one place where the work happens. Embed it in a service
// of your own:
//
//	eng, err := boomerang.New(boomerang.Config{RedisURL: "redis://127.0.0.1:6379/0"})
//	if err != nil { ... }
//	defer eng.Close()
//	boomerang.Handle(eng, "user_created", createUser, boomerang.WithTimeout(5*time.Second))
//	go http.ListenAndServe("127.0.0.1:8080", eng.Handler())  // or eng.Register(yourGinRouter)
//	err = eng.Run(ctx)  // workers, callbacks, reaping, retention, until ctx ends
//
// Business logic is a function of a typed event message
// (event.EventMessage[T], as in the original event package). It returns
// nil, an error to retry under the policy, Permanent(err) to fail at once,
// or RetryAfter(err, d) to wait at least d.
//
// The standalone server (cmd/boomerang) is this engine with routes from a
// configuration file (Forward, Accept). Library users of the original
// package keep handler.NewGinEventHandler with
// callback.NewEventHandler(eng.Store()): the event runs in the request, and
// the engine delivers its callback.
//
// Guarantees, the Redis layout and the data flow are in docs/architecture.md.
package boomerang
