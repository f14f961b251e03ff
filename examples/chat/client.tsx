/**
 * The chat page's client: the AI SDK's real `useChat` with `resume: true` against the resumable chat routes.
 *
 * Where things are kept: the chat id in the URL (`#<id>`); the messages in this browser's localStorage, saved whenever
 * no answer is streaming (so a reload mid-answer keeps the question, and the answer comes back from the server's replay
 * of the running run: `GET /api/chat/:id/stream`); whether the last answer was stopped, in localStorage too. The server
 * keeps no conversation: a page closed mid-answer and opened again after that answer ended finds no running answer to
 * replay, and says so (a real application would save the messages in its database when an answer ends).
 */
import { useChat } from "@ai-sdk/react"
import { DefaultChatTransport, type UIMessage } from "ai"
import { type FormEvent, useEffect, useMemo, useState } from "react"
import { createRoot } from "react-dom/client"

const chatIdFromUrl = (): string => {
  const id = decodeURIComponent(location.hash.slice(1))
  if (id !== "") return id
  const fresh = crypto.randomUUID()
  history.replaceState(null, "", `#${fresh}`)
  return fresh
}

const storage = {
  messages: (id: string): Array<UIMessage> => JSON.parse(localStorage.getItem(`chat:${id}`) ?? "[]"),
  saveMessages: (id: string, messages: ReadonlyArray<UIMessage>) =>
    localStorage.setItem(`chat:${id}`, JSON.stringify(messages)),
  stopped: (id: string) => localStorage.getItem(`chat:${id}:stopped`) === "true",
  saveStopped: (id: string, stopped: boolean) => localStorage.setItem(`chat:${id}:stopped`, String(stopped))
}

const textOf = (message: UIMessage) => message.parts.map((part) => (part.type === "text" ? part.text : "")).join("")

/**
 * What went wrong, in words. The AI SDK's error for a refused request carries the status (`statusCode`) and the
 * server's body (`responseBody`, the routes' JSON `{ reason, message }`), which it also uses as the error's message.
 */
const inWords = (error: Error): string => {
  const { statusCode, responseBody } = error as Error & { statusCode?: number; responseBody?: string }
  let serverMessage: string | undefined
  try {
    const body: unknown = JSON.parse(responseBody ?? error.message)
    if (typeof body === "object" && body !== null && "message" in body && typeof body.message === "string") {
      serverMessage = body.message
    }
  } catch {
    // not JSON: a message in words already
  }
  if (statusCode === 409) return "This chat is already answering, in another tab perhaps. Reload to follow that answer."
  if (statusCode !== undefined && statusCode >= 500) return "The server could not answer right now. Try again shortly."
  if (statusCode !== undefined) return `The server refused the question${serverMessage ? `: ${serverMessage}` : "."}`
  if (error instanceof TypeError) return "The connection to the server was lost. Reload the page to pick up the answer."
  if (serverMessage !== undefined) return `The answer failed: ${serverMessage}`
  return error.message.trim().startsWith("{") ? "The answer failed." : `The answer failed: ${error.message}`
}

function Chat({ id, onNew }: { readonly id: string; readonly onNew: () => void }) {
  const [initialMessages] = useState(() => storage.messages(id))
  const [stopped, setStopped] = useState(() => storage.stopped(id))
  const [stopFailed, setStopFailed] = useState(false)
  // whether the server said no answer runs for this chat (the resume's 204)
  const [nothingRunning, setNothingRunning] = useState(false)
  const [input, setInput] = useState(initialMessages.length === 0 ? "What is a resumable stream?" : "")
  const transport = useMemo(
    () =>
      new DefaultChatTransport({
        api: "/api/chat",
        fetch: async (request, init) => {
          const response = await fetch(request, init)
          if ((init?.method ?? "GET") === "GET" && response.status === 204) setNothingRunning(true)
          return response
        }
      }),
    []
  )
  const { messages, sendMessage, status, stop, error } = useChat({
    id,
    messages: initialMessages,
    resume: true,
    transport
  })
  const answering = status === "submitted" || status === "streaming"
  useEffect(() => {
    if (status !== "streaming") storage.saveMessages(id, messages)
  }, [id, messages, status])
  useEffect(() => storage.saveStopped(id, stopped), [id, stopped])
  useEffect(() => {
    if (status === "submitted") setStopped(false) // a new answer (asked here, or resumed after a reload)
  }, [status])

  const ask = (event: FormEvent) => {
    event.preventDefault()
    if (answering || input.trim() === "") return
    setStopFailed(false)
    setNothingRunning(false)
    void sendMessage({ text: input })
    setInput("")
  }
  // cancels the run on the server (wherever it runs), then ends useChat's request; an answer that had just completed
  // is left to arrive whole
  const onStop = async () => {
    setStopped(true)
    let cancelled = true
    try {
      // JSON, as the routes require of every POST (no cross-site form or no-cors fetch can send it)
      const response = await fetch(`/api/chat/${encodeURIComponent(id)}/stop`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}"
      })
      if (response.ok) cancelled = ((await response.json()) as { status?: string }).status === "cancelled"
      else setStopFailed(true)
    } catch {
      setStopFailed(true)
    }
    if (cancelled) await stop()
    else setStopped(false)
  }

  const last = messages.at(-1)
  const unanswered = nothingRunning && !answering && !stopped && error === undefined && last?.role === "user"
  const note =
    answering && stopped
      ? "Stopping…"
      : status === "submitted"
        ? "Thinking…"
        : status === "streaming"
          ? "Answering… (reload the page: the answer goes on)"
          : stopped
            ? "Stopped."
            : unanswered
              ? "This answer ended while the page was closed, so it was not saved here. Ask again."
              : ""

  return (
    <main>
      <header>
        <h1>Resumable chat</h1>
        <button type="button" onClick={onNew} disabled={answering}>
          New chat
        </button>
      </header>
      <ol id="messages">
        {messages.map((message) => (
          <li key={message.id} className={`bubble ${message.role}`}>
            <span className="text">{textOf(message)}</span>
            {stopped && !answering && message === last && message.role === "assistant" && (
              <span className="tag">stopped</span>
            )}
          </li>
        ))}
      </ol>
      <p id="status" role="status">
        {note}
      </p>
      {stopFailed && (
        <p className="error" role="alert">
          The server could not be told to stop: the answer may go on there.
        </p>
      )}
      {error !== undefined && !stopped && (
        <p id="error" className="error" role="alert">
          {inWords(error)}
        </p>
      )}
      <form onSubmit={ask}>
        <input
          aria-label="Your question"
          placeholder="Ask a question…"
          value={input}
          onChange={(event) => setInput(event.target.value)}
          disabled={answering}
        />
        <button id="ask" type="submit" disabled={answering}>
          Ask
        </button>
        <button id="stop" type="button" onClick={() => void onStop()} disabled={status !== "streaming" || stopped}>
          Stop
        </button>
      </form>
    </main>
  )
}

function App() {
  const [id, setId] = useState(chatIdFromUrl)
  const onNew = () => {
    const fresh = crypto.randomUUID()
    history.pushState(null, "", `#${fresh}`)
    setId(fresh)
  }
  useEffect(() => {
    const follow = () => setId(chatIdFromUrl())
    addEventListener("hashchange", follow)
    return () => removeEventListener("hashchange", follow)
  }, [])
  return <Chat key={id} id={id} onNew={onNew} />
}

createRoot(document.getElementById("root") as HTMLElement).render(<App />)
