/**
 * The chat page's client: the AI SDK's real `useChat` with `resume: true` against the resumable chat routes. The chat
 * id lives in the URL (`#<id>`), the finished messages in localStorage (saved whenever no answer is streaming, so a
 * reload mid-answer keeps the question and gets the answer back from the server's replay).
 */
import { useChat } from "@ai-sdk/react"
import { DefaultChatTransport, type UIMessage } from "ai"
import { type FormEvent, useEffect, useState } from "react"
import { createRoot } from "react-dom/client"

const chatIdFromUrl = (): string => {
  const id = location.hash.slice(1)
  if (id !== "") return id
  const fresh = crypto.randomUUID()
  history.replaceState(null, "", `#${fresh}`)
  return fresh
}

const stored = (id: string): Array<UIMessage> => JSON.parse(localStorage.getItem(`chat:${id}`) ?? "[]")

const textOf = (message: UIMessage) => message.parts.map((part) => (part.type === "text" ? part.text : "")).join("")

function Chat({ id, onNew }: { readonly id: string; readonly onNew: () => void }) {
  const [stopped, setStopped] = useState(false)
  const [input, setInput] = useState("What is a resumable stream?")
  const { messages, sendMessage, status, stop, error } = useChat({
    id,
    messages: stored(id),
    resume: true,
    transport: new DefaultChatTransport({ api: "/api/chat" })
  })
  const answering = status === "submitted" || status === "streaming"
  useEffect(() => {
    if (status !== "streaming") localStorage.setItem(`chat:${id}`, JSON.stringify(messages))
  }, [id, messages, status])

  const ask = (event: FormEvent) => {
    event.preventDefault()
    if (answering || input.trim() === "") return
    setStopped(false)
    void sendMessage({ text: input })
  }
  const onStop = async () => {
    setStopped(true)
    await fetch(`/api/chat/${encodeURIComponent(id)}/stop`, { method: "POST" })
    await stop()
  }

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
          <li key={message.id} className={`bubble ${message.role}`} data-role={message.role}>
            {textOf(message)}
          </li>
        ))}
      </ol>
      <p id="status" role="status">
        {status === "submitted"
          ? "Thinking…"
          : status === "streaming"
            ? "Answering… (reload the page: the answer goes on)"
            : stopped
              ? "Stopped."
              : ""}
      </p>
      {error !== undefined && !stopped && (
        <p id="error" role="alert">
          The answer could not be completed: {error.message}
        </p>
      )}
      <form onSubmit={ask}>
        <input value={input} onChange={(event) => setInput(event.target.value)} disabled={answering} />
        <button id="ask" type="submit" disabled={answering}>
          Ask
        </button>
        <button id="stop" type="button" onClick={() => void onStop()} disabled={!answering}>
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
    history.replaceState(null, "", `#${fresh}`)
    setId(fresh)
  }
  return <Chat key={id} id={id} onNew={onNew} />
}

createRoot(document.getElementById("root") as HTMLElement).render(<App />)
