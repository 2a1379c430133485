// Entry: load the package's wasm once, then render.
import init from "dme-events";
import { createRoot } from "react-dom/client";
import { App } from "./App.jsx";
import "./style.css";

await init();
createRoot(document.getElementById("root")).render(<App />);
