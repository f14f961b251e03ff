/** The chat page's HTML: the styles and the mount point of the client bundle (`/app.js`). */
export const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Resumable chat · effect-redis-streams</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d2330; }
  main { max-width: 44rem; margin: 2rem auto; padding: 0 1rem; }
  header { display: flex; align-items: center; justify-content: space-between; }
  h1 { font-size: 1.4rem; margin: 0; }
  #messages { list-style: none; padding: 0; display: flex; flex-direction: column; gap: .75rem; min-height: 8rem; }
  .bubble { padding: .6rem .9rem; border-radius: 1rem; max-width: 85%; white-space: pre-wrap; }
  .bubble.user { align-self: flex-end; background: #2f6fed; color: white; border-bottom-right-radius: .25rem; }
  .bubble.assistant { align-self: flex-start; background: white; border: 1px solid #dde1e8; border-bottom-left-radius: .25rem; }
  #status { color: #5b6475; min-height: 1.5rem; margin: .25rem 0; }
  .tag { margin-left: .5rem; font-size: .75rem; color: #8a5a00; background: #fff4d6; border-radius: .5rem; padding: .05rem .45rem; }
  .error { color: #b42318; background: #fef3f2; border: 1px solid #fecdca; padding: .5rem .75rem; border-radius: .5rem; }
  form { display: flex; gap: .5rem; }
  input { flex: 1; padding: .55rem .75rem; border: 1px solid #c8cdd6; border-radius: .5rem; font: inherit; }
  button { padding: .55rem 1rem; border-radius: .5rem; border: 1px solid #c8cdd6; background: white; font: inherit; cursor: pointer; }
  button[type=submit] { background: #2f6fed; color: white; border-color: #2f6fed; }
  button:disabled { opacity: .45; cursor: default; }
</style>
</head>
<body>
<div id="root"></div>
<script type="module" src="/app.js"></script>
</body>
</html>
`
