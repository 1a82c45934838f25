// The Python training scripts of docs/trainers.md and docs/reproduce-genre.md, run as written on a
// merged and exported folder, against a stand-in for the parts of microsoft/recommenders they call
// (no TensorFlow here). The stand-in keeps what decides which impressions get predicted: the test
// iterator loads its news and behaviors on first use and serves them to every later call
// (MINDIterator's `hasattr` checks), and BaseModel.fit evaluates the validation files with it.
import { cp, mkdir, readFile, writeFile } from "node:fs/promises";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { runCliCaptured } from "./helpers/cli.js";
import { NUMPY } from "./helpers/python.js";
import { tempDir } from "./helpers/temp.js";

const REPO = join(import.meta.dirname, "..");

const STUB: Record<string, string> = {
  "recommenders/__init__.py": "",
  "recommenders/models/__init__.py": "",
  "recommenders/models/newsrec/__init__.py": "",
  "recommenders/models/newsrec/io/__init__.py": "",
  "recommenders/models/newsrec/models/__init__.py": "",
  "recommenders/models/newsrec/newsrec_utils.py": String.raw`
import random, re
class HParams:
    def __init__(self, d):
        self.__dict__.update(d)
def prepare_hparams(yaml_file=None, **kw):
    for k in ["learning_rate", "dropout"]:
        assert isinstance(kw[k], float), k
    for k in ["title_size", "his_size", "npratio", "word_emb_dim", "head_num", "head_dim", "batch_size", "epochs", "show_step"]:
        assert isinstance(kw[k], int), k
    for k in ["wordEmb_file", "wordDict_file", "userDict_file"]:
        assert isinstance(kw[k], str), k
    d = {"support_quick_scoring": False}
    d.update(kw)
    return HParams(d)
def word_tokenize(sent):
    return re.findall(r"[\w]+|[.,!?;|]", sent.lower())
def newsample(news, ratio):
    return news + [0] * (ratio - len(news)) if ratio > len(news) else random.sample(news, ratio)
`,
  "recommenders/models/newsrec/io/mind_iterator.py": String.raw`
import pickle
from recommenders.models.newsrec.newsrec_utils import word_tokenize
class MINDIterator:
    def __init__(self, hparams, npratio=-1, col_spliter="\t", ID_spliter="%"):
        self.col_spliter, self.npratio = col_spliter, npratio
        with open(hparams.wordDict_file, "rb") as f:
            self.word_dict = pickle.load(f)
        with open(hparams.userDict_file, "rb") as f:
            self.uid2index = pickle.load(f)
    def init_news(self, news_file):
        self.nid2index, self.news_title_index = {}, [[]]
        for line in open(news_file, "r", encoding="utf-8"):
            nid, vert, subvert, title, ab, url, _, _ = line.strip("\n").split(self.col_spliter)
            if nid not in self.nid2index:
                self.nid2index[nid] = len(self.nid2index) + 1
                self.news_title_index.append([self.word_dict[w] for w in word_tokenize(title) if w in self.word_dict])
    def init_behaviors(self, behaviors_file):
        self.histories, self.imprs, self.labels, self.impr_indexes, self.uindexes = [], [], [], [], []
        for impr_index, line in enumerate(open(behaviors_file, "r", encoding="utf-8")):
            uid, time, history, impr = line.strip("\n").split(self.col_spliter)[-4:]
            self.histories.append([self.nid2index[i] for i in history.split()])
            self.imprs.append([self.nid2index[i.split("-")[0]] for i in impr.split()])
            self.labels.append([int(i.split("-")[1]) for i in impr.split()])
            self.impr_indexes.append(impr_index)
            self.uindexes.append(self.uid2index.get(uid, 0))
    def load_data_from_file(self, news_file, behavior_file):
        if not hasattr(self, "news_title_index"):
            self.init_news(news_file)
        if not hasattr(self, "impr_indexes"):
            self.init_behaviors(behavior_file)
    def load_user_from_file(self, news_file, behavior_file):
        self.load_data_from_file(news_file, behavior_file)
    def load_news_from_file(self, news_file):
        if not hasattr(self, "news_title_index"):
            self.init_news(news_file)
    def load_impression_from_file(self, behaviors_file):
        if not hasattr(self, "histories"):
            self.init_behaviors(behaviors_file)
        for i in range(len(self.labels)):
            yield self.impr_indexes[i], self.imprs[i], self.uindexes[i], self.labels[i]
`,
  "recommenders/models/newsrec/models/nrms.py": String.raw`
import numpy as np
class NRMSModel:
    def __init__(self, hparams, iterator_creator, seed=None):
        np.random.seed(seed)
        self.hparams = hparams
        self.train_iterator = iterator_creator(hparams, hparams.npratio, col_spliter="\t")
        self.test_iterator = iterator_creator(hparams, col_spliter="\t")
    def fit(self, train_news_file, train_behaviors_file, valid_news_file, valid_behaviors_file):
        self.train_iterator.load_data_from_file(train_news_file, train_behaviors_file)
        self.run_fast_eval(valid_news_file, valid_behaviors_file)  # what run_eval does each epoch
        return self
    def run_fast_eval(self, news_filename, behaviors_file):
        it = self.test_iterator
        it.load_news_from_file(news_filename)
        it.load_user_from_file(news_filename, behaviors_file)
        group_impr_indexes, group_labels, group_preds = [], [], []
        for impr_index, news_index, user_index, label in it.load_impression_from_file(behaviors_file):
            group_impr_indexes.append(impr_index)
            group_labels.append(np.array(label, dtype="int32"))
            group_preds.append(np.random.rand(len(news_index)).astype("float32"))
        return group_impr_indexes, group_labels, group_preds
`,
};

/** The fenced blocks of one language in a Markdown file, in order. */
async function codeBlocks(doc: string, lang: string): Promise<string[]> {
  const text = await readFile(join(REPO, "docs", doc), "utf8");
  return [...text.matchAll(new RegExp("^```" + lang + "\\n([\\s\\S]*?)^```$", "gm"))].map((m) => m[1]!);
}

const cli = async (root: string, args: string[]) => {
  const r = await runCliCaptured(args, { cwd: root });
  expect(r.code, `${args.join(" ")}\n${r.stderr}`).toBe(0);
  return r;
};

describe.skipIf(!NUMPY)("the documented NRMS scripts, run as written", () => {
  let root = "";
  const py = (script: string, args: string[]) =>
    execFileSync("python3", [script, ...args], { cwd: root, env: { ...process.env, PYTHONPATH: join(root, "stub") }, stdio: "pipe" });

  beforeAll(async () => {
    root = await tempDir("gm-scripts-");
    for (const [from, to] of [["MINDsample_train", "MINDsmall_train"], ["MINDsample_dev", "MINDsmall_dev"]]) {
      await cp(join(REPO, "mind-data", "sample", from!), join(root, "mind-data", to!), { recursive: true });
    }
    for (const [file, text] of Object.entries(STUB)) {
      await mkdir(join(root, "stub", file, ".."), { recursive: true });
      await writeFile(join(root, "stub", file), text);
    }
    await cli(root, ["augment", "--data", "mind-data", "--provider", "offline", "--out", "output/small"]);
    for (const dev of ["mind-data/MINDsmall_dev", "output/small/MINDsmall_dev"]) await cli(root, ["split", dev, "--by-time"]);
    await cli(root, ["export", "recommenders", "mind-data/MINDsmall_train", "mind-data/MINDsmall_dev", "--out", "utils/original"]);
    await cli(root, ["export", "recommenders", "output/small", "--out", "utils/augmented"]);
  }, 60_000);

  it("trainers.md: predicts every dev impression, original and augmented, and score reads both", async () => {
    const [script] = await codeBlocks("trainers.md", "python");
    await writeFile(join(root, "nrms_train.py"), script!);
    py("nrms_train.py", ["mind-data", "utils/original", "original.tsv"]);
    py("nrms_train.py", ["output/small", "utils/augmented", "augmented.tsv"]);
    const r = await cli(root, ["score", "--truth", "mind-data/MINDsmall_dev/behaviors.tsv", "--pred", "original.tsv", "--pred", "augmented.tsv"]);
    expect(r.stdout).toMatch(/all users: 270 impressions/);
  });

  it("reproduce-genre.md: fits on the validation half and predicts the test half's impressions", async () => {
    const [script] = await codeBlocks("reproduce-genre.md", "python");
    await writeFile(join(root, "nrms_seed.py"), script!);
    py("nrms_seed.py", ["mind-data", "utils/original", "1", "original-1.tsv"]);
    py("nrms_seed.py", ["output/small", "utils/augmented", "1", "augmented-1.tsv"]);
    const truth = "mind-data/MINDsmall_dev_test/behaviors.tsv";
    const ids = (await readFile(join(root, truth), "utf8")).trimEnd().split("\n").map((l) => l.split("\t")[0]);
    for (const pred of ["original-1.tsv", "augmented-1.tsv"]) {
      const lines = (await readFile(join(root, pred), "utf8")).trimEnd().split("\n");
      expect(lines.map((l) => l.split("\t")[0])).toEqual(ids);
    }
    const r = await cli(root, ["score", "--truth", truth, "--pred", "original-1.tsv", "--pred", "augmented-1.tsv"]);
    expect(r.stdout).toMatch(/all users: 135 impressions/);
  });

  it("installs a TensorFlow recommenders' NRMS runs on (below 2.16, Keras 2)", async () => {
    for (const doc of ["trainers.md", "reproduce-genre.md"]) {
      const text = (await readFile(join(REPO, "docs", doc), "utf8")).replace(/\s+/g, " ");
      const installs = [...text.matchAll(/`pip install ([^`]*)`/g)].map((m) => m[1]!).filter((c) => c.includes("recommenders"));
      expect(installs.length, doc).toBeGreaterThan(0);
      for (const c of installs) expect(c, doc).toMatch(/"tensorflow[^"]*<2\.16"/);
    }
  });
});
