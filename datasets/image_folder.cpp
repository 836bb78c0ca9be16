#include "datasets/image_folder.h"

// clang-format off
#include <cstdio>  // jpeglib.h needs FILE and size_t declared first
#include <jpeglib.h>
// clang-format on
#include <png.h>
#include <sys/stat.h>
#include <tbb/parallel_for.h>
#include <torch/torch.h>

#include <algorithm>
#include <csetjmp>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/errors.h"
#include "core/files.h"
#include "core/hash.h"
#include "core/json.h"
#include "graph/container.h"
#include "graph/network.h"

namespace tightfit::datasets {

namespace {

namespace fs = std::filesystem;

const graph::FileKind kCacheFile = {{'T', 'F', 'I', 'T', 'I', 'M', 'G', '1'},
                                    1,
                                    "tightfit-image-cache",
                                    "image cache",
                                    "tightfit image cache",
                                    "tightfit with an image-folder data set",
                                    "delete it; it is rebuilt from the images"};

bool is_image_name(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

/// A decoded RGB image, rows x cols x 3.
struct Rgb {
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> pixels;
};

struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_fail(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

/// Decodes a JPEG into RGB (grayscale converted); false with `error` set on a bad file.
bool decode_jpeg(const std::string& bytes, Rgb& out, std::string& error) {
  jpeg_decompress_struct cinfo{};
  JpegError err{};
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_fail;
  if (setjmp(err.jump)) {
    error = err.message;
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()),
               static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&cinfo, TRUE);
  cinfo.out_color_space = JCS_RGB;
  jpeg_start_decompress(&cinfo);
  out.rows = cinfo.output_height;
  out.cols = cinfo.output_width;
  out.pixels.resize(static_cast<size_t>(out.rows * out.cols * 3));
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out.pixels.data() + static_cast<size_t>(cinfo.output_scanline) * out.cols * 3;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return true;
}

/// Decodes a PNG into RGB (gray and palette expanded, alpha dropped) with libpng's simplified API.
bool decode_png(const std::string& bytes, Rgb& out, std::string& error) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size())) {
    error = image.message;
    return false;
  }
  image.format = PNG_FORMAT_RGB;
  out.rows = image.height;
  out.cols = image.width;
  out.pixels.resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, out.pixels.data(), 0, nullptr)) {
    error = image.message;
    png_image_free(&image);
    return false;
  }
  return true;
}

Rgb decode(const std::string& path) {
  const std::string bytes = read_whole_file(path, "image", "check the file");
  Rgb rgb;
  std::string error;
  bool ok = false;
  if (bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0xFF &&
      static_cast<unsigned char>(bytes[1]) == 0xD8) {
    ok = decode_jpeg(bytes, rgb, error);
  } else if (bytes.size() >= 8 && std::memcmp(bytes.data(), "\x89PNG", 4) == 0) {
    ok = decode_png(bytes, rgb, error);
  } else {
    error = "neither a JPEG nor a PNG file";
  }
  if (!ok || rgb.rows < 1 || rgb.cols < 1)
    throw InputError("image '" + path + "' cannot be decoded (" + error +
                     "); replace or remove it");
  return rgb;
}

/// transforms.Resize(resize) then transforms.CenterCrop(crop), as C x crop x crop bytes.
void transform(const Rgb& rgb, const ImageFolderOptions& opts, const std::string& path,
               uint8_t* out) {
  const bool tall = rgb.rows >= rgb.cols;
  const int64_t short_side = tall ? rgb.cols : rgb.rows, long_side = tall ? rgb.rows : rgb.cols;
  const int64_t new_long = opts.resize * long_side / short_side;  // torchvision truncates
  const int64_t rows = tall ? new_long : opts.resize, cols = tall ? opts.resize : new_long;
  if (rows < opts.crop || cols < opts.crop)
    throw InputError("image '" + path + "' resized to " + std::to_string(rows) + "x" +
                     std::to_string(cols) + " is smaller than the crop " +
                     std::to_string(opts.crop) + "; use a crop no larger than resize");
  const at::Tensor hwc = torch::from_blob(const_cast<uint8_t*>(rgb.pixels.data()),
                                          {rgb.rows, rgb.cols, 3}, torch::kUInt8);
  const at::Tensor x = hwc.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat32);
  const at::Tensor resized =
      (rows == rgb.rows && cols == rgb.cols)
          ? x
          : at::_upsample_bilinear2d_aa(x, at::IntArrayRef({rows, cols}), false);
  const int64_t top = static_cast<int64_t>(std::lround((rows - opts.crop) / 2.0));
  const int64_t left = static_cast<int64_t>(std::lround((cols - opts.crop) / 2.0));
  const at::Tensor cropped = resized.narrow(2, top, opts.crop)
                                 .narrow(3, left, opts.crop)
                                 .round()
                                 .clamp(0, 255)
                                 .to(torch::kUInt8)
                                 .contiguous();
  std::memcpy(out, cropped.data_ptr<uint8_t>(), static_cast<size_t>(cropped.numel()));
}

struct Listing {
  std::vector<std::string> files;
  std::vector<uint8_t> labels;
};

Listing list_images(const fs::path& dir, const std::vector<std::string>& classes) {
  Listing l;
  for (size_t c = 0; c < classes.size(); ++c) {
    std::vector<std::string> files;
    const fs::path class_dir = dir / classes[c];
    if (!fs::is_directory(class_dir)) continue;
    for (const auto& e : fs::directory_iterator(class_dir))
      if (e.is_regular_file() && is_image_name(e.path())) files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    for (auto& f : files) {
      l.files.push_back(std::move(f));
      l.labels.push_back(static_cast<uint8_t>(c));
    }
  }
  return l;
}

/// What the cache of `root` depends on: the options and every image's name, size and mtime.
std::string listing_key(const std::vector<Listing>& parts, const ImageFolderOptions& opts) {
  uint64_t h = fnv1a(&opts.resize, sizeof(opts.resize));
  h = fnv1a(&opts.crop, sizeof(opts.crop), h);
  for (const auto& part : parts)
    for (size_t i = 0; i < part.files.size(); ++i) {
      struct stat st {};
      ::stat(part.files[i].c_str(), &st);
      h = fnv1a(part.files[i].data(), part.files[i].size(), h);
      const int64_t facts[3] = {static_cast<int64_t>(st.st_size),
                                static_cast<int64_t>(st.st_mtim.tv_sec),
                                static_cast<int64_t>(st.st_mtim.tv_nsec)};
      h = fnv1a(facts, sizeof(facts), h);
      h = fnv1a(&part.labels[i], 1, h);
    }
  return hex64(h);
}

ImageSet decode_all(const Listing& l, const ImageFolderOptions& opts) {
  ImageSet set;
  set.channels = 3;
  set.rows = set.cols = opts.crop;
  set.labels = l.labels;
  set.pixels.resize(l.files.size() * static_cast<size_t>(set.image_bytes()));
  tbb::parallel_for(size_t{0}, l.files.size(), [&](size_t i) {
    transform(decode(l.files[i]), opts, l.files[i],
              set.pixels.data() + i * static_cast<size_t>(set.image_bytes()));
  });
  return set;
}

}  // namespace

std::vector<std::string> image_folder_classes(const std::string& dir) {
  if (!fs::is_directory(dir))
    throw InputError("image folder '" + dir + "' does not exist; it needs one folder per class");
  std::vector<std::string> classes;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && e.path().filename().string()[0] != '.')
      classes.push_back(e.path().filename().string());
  std::sort(classes.begin(), classes.end());
  if (classes.empty())
    throw InputError("image folder '" + dir + "' has no class folders (CLASS/*.jpg|png)");
  if (classes.size() > 256)
    throw InputError("image folder '" + dir + "' has " + std::to_string(classes.size()) +
                     " classes; tightfit takes at most 256");
  return classes;
}

ImageFolder ImageFolder::from_json(const nlohmann::json& j, const std::string& where) {
  auto f = read_section<ImageFolder>(j, where);
  if (f.root_.empty())
    throw ConfigError(where + ".root is missing: the folder holding train/CLASS/*.jpg and " +
                      "val/CLASS/*.jpg");
  if (f.opts_.crop < 1 || f.opts_.resize < f.opts_.crop || f.opts_.resize > 4096)
    throw ConfigError(where + ": crop must be >= 1 and resize in [crop, 4096] (e.g. resize 73, " +
                      "crop 64)");
  check_normalization_pair(f.mean_, f.std_, where);
  f.where_ = where;
  if (f.validation_ != "split" && f.validation_ != "val")
    throw ConfigError(where + ".validation is '" + f.validation_ +
                      "'; valid: \"split\" (held out of train/, validation_count images) or "
                      "\"val\" (the val/ folder, also the test set)");
  return f;
}

Split ImageFolder::load(const SplitOptions& opts) const {
  const fs::path root(root_);
  const auto classes = image_folder_classes((root / "train").string());
  const auto val_classes = image_folder_classes((root / "val").string());
  if (val_classes != classes)
    throw InputError("image folder '" + root_ + "': train has classes " + join(classes) +
                     " but val has " + join(val_classes) + "; give both the same class folders");
  const std::vector<Listing> parts = {list_images(root / "train", classes),
                                      list_images(root / "val", classes)};
  for (size_t k = 0; k < 2; ++k)
    if (parts[k].files.empty())
      throw InputError("image folder '" + (root / (k == 0 ? "train" : "val")).string() +
                       "' holds no .jpg or .png images");
  const std::string key = listing_key(parts, opts_);
  const std::string cache = cache_.empty()
                                ? (root / (".tightfit-cache-" + std::to_string(opts_.resize) + "-" +
                                           std::to_string(opts_.crop) + ".bin"))
                                      .string()
                                : cache_;
  ImageSet sets[2];
  bool cached = false;
  if (fs::exists(cache)) {
    const auto file = graph::read_container(cache, kCacheFile);
    if (file.header.value("key", "") == key) {
      const auto data = file.data();
      size_t at = 0;
      for (size_t k = 0; k < 2; ++k) {
        ImageSet& s = sets[k];
        s.channels = 3;
        s.rows = s.cols = opts_.crop;
        const size_t n = parts[k].files.size(), px = n * static_cast<size_t>(s.image_bytes());
        if (at + px + n > data.size())
          throw InputError(graph::describe_file(kCacheFile, cache) + " is truncated; delete it");
        s.pixels.assign(data.begin() + at, data.begin() + at + px);
        at += px;
        s.labels.assign(data.begin() + at, data.begin() + at + n);
        at += n;
      }
      cached = true;
    }
  }
  if (!cached) {
    std::fprintf(stderr, "[data] decoding %zu + %zu images of %s (cached in %s)\n",
                 parts[0].files.size(), parts[1].files.size(), root_.c_str(), cache.c_str());
    std::string data;
    for (size_t k = 0; k < 2; ++k) {
      sets[k] = decode_all(parts[k], opts_);
      data.append(sets[k].pixels.begin(), sets[k].pixels.end());
      data.append(sets[k].labels.begin(), sets[k].labels.end());
    }
    try {
      graph::write_container(cache, kCacheFile,
                             {{"key", key},
                              {"classes", classes},
                              {"resize", opts_.resize},
                              {"crop", opts_.crop},
                              {"train", parts[0].files.size()},
                              {"val", parts[1].files.size()}},
                             data);
    } catch (const InputError& e) {
      std::fprintf(stderr, "[data] no cache (%s): the images are decoded again next time\n",
                   e.what());
    }
  }
  Split split;
  if (validation_ == "val") {  // the val folder scores candidates and is the test set
    split.train = std::move(sets[0]);
    split.validation = sets[1];
    split.test = std::move(sets[1]);
  } else {
    split = split_training_set(sets[0], std::move(sets[1]), opts);
  }
  set_normalization(split, mean_, std_, where_);
  return split;
}

nlohmann::json ImageFolder::describe() const {
  return {{"name", name()},
          {"root", root_},
          {"resize", opts_.resize},
          {"crop", opts_.crop},
          {"validation", validation_}};
}

}  // namespace tightfit::datasets
